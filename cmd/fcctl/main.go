// Command fcctl is the command-line client of fcd. It talks only to fcd's
// public API, signing every call with an access key from fcd's
// credentials.json, flags or the environment.
//
//	fcctl [global flags] <command> <subcommand> [flags] [args]
//
// Exit codes: 0 success, 1 the API or the operation failed, 2 bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/fcd-dev/fcd/api"
)

const usage = `fcctl: command-line client for fcd

Usage:
  fcctl [global flags] <command> [args]

Commands:
  function create|get|list|update|delete   manage functions
  function disable|enable FUNCTION         refuse or accept invocations (--reason R)
  function coldstarts FUNCTION [-n N] [-w] last instance starts as a timeline (-w: waterfall)
  invoke FUNCTION [-d BODY|@FILE] [-v]     invoke a function (InvokeFunction); --async [--task-id ID]; --qualifier Q
  task list|get|stop FUNCTION [TASK_ID]    async tasks
  logs FUNCTION [--tail N]                 print a function's instance logs
  provision set|get|delete|list FUNCTION   keep instances warm
  version publish|list|delete FUNCTION     published versions (immutable snapshots)
  alias create|get|update|delete|list      aliases, with a weighted split between two versions
  concurrency put|get|delete|list          reserved concurrency (caps concurrent requests)
  instance list FUNCTION [--qualifier Q]   running instances
  trigger create|get|list|update|delete    HTTP triggers: a function's HTTP endpoint
  tag add|remove|list                      function tags (list filters: function list --tag K=V)
  domain create|get|list|update|delete     custom domains: route Host and path to functions
  role create|get|list|delete              roles functions assume to pull images
  billing [--function F] [--since T]       image-pull and invocation charges
  image index|cat                          index gzip layers for lazy reads
  image accelerate|status|jobs|repo        convert images for lazy loading (fcctl image help)

Global flags (or FCD_ENDPOINT, FCD_ACCESS_KEY_ID, FCD_ACCESS_KEY_SECRET, FCD_DATA_DIR):
`

// errUsage marks a usage error: exit code 2.
var errUsage = errors.New("usage")

// globals holds the flags shared by every command.
type globals struct {
	dataDir, endpoint, keyID, keySecret string
	timeout                             time.Duration
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "fcctl:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "fcctl:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var g globals
	fs := flag.NewFlagSet("fcctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&g.dataDir, "data-dir", envOr("FCD_DATA_DIR", api.DefaultDataDir()), "fcd data dir holding credentials.json")
	fs.StringVar(&g.endpoint, "endpoint", os.Getenv("FCD_ENDPOINT"), "fcd address host:port (default: from credentials.json)")
	fs.StringVar(&g.keyID, "access-key-id", os.Getenv("FCD_ACCESS_KEY_ID"), "access key id (default: from credentials.json)")
	fs.StringVar(&g.keySecret, "access-key-secret", os.Getenv("FCD_ACCESS_KEY_SECRET"), "access key secret (default: from credentials.json)")
	fs.DurationVar(&g.timeout, "timeout", 0, "overall time limit of the command (0: none)")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("%w: a command is required", errUsage)
	}
	if g.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.timeout)
		defer cancel()
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	if cmd == "image" {
		return runImage(ctx, g.client, rest, stdout, stderr)
	}
	runAPI, ok := apiCommands[cmd]
	if !ok {
		fs.Usage()
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	return runAPI(ctx, c, rest, stdout, stderr)
}

// apiCommands are the commands that call fcd's API.
var apiCommands = map[string]func(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error{
	"function":  runFunction,
	"functions": runFunction,
	"fn":        runFunction,
	"invoke":    runInvoke,
	"logs":      runLogs,
	"provision": runProvision,
	"role":      runRole,
	"roles":     runRole,
	"billing":   runBilling,
	"task":      runTask,
	"tasks":     runTask,
	// versions.go
	"version":     runVersion,
	"versions":    runVersion,
	"alias":       runAlias,
	"aliases":     runAlias,
	"concurrency": runConcurrency,
	"instance":    runInstance,
	"instances":   runInstance,
	"trigger":     runTrigger,
	"triggers":    runTrigger,
	"tag":         runTag,
	"tags":        runTag,
	"domain":      runDomain,
	"domains":     runDomain,
}

// client builds an API client from flags, falling back to credentials.json.
func (g *globals) client() (*client, error) {
	creds := api.Credentials{AccessKeyID: g.keyID, AccessKeySecret: g.keySecret, Endpoint: g.endpoint}
	if creds.AccessKeyID == "" || creds.Endpoint == "" {
		path := filepath.Join(g.dataDir, api.CredentialsFile)
		file, err := api.LoadCredentials(path)
		if err != nil {
			return nil, fmt.Errorf("no credentials: pass --endpoint, --access-key-id and --access-key-secret, or let fcctl read %s: %w", path, err)
		}
		if creds.AccessKeyID == "" {
			creds.AccessKeyID, creds.AccessKeySecret = file.AccessKeyID, file.AccessKeySecret
		}
		if creds.Endpoint == "" {
			creds.Endpoint = file.Endpoint
		}
	}
	return &client{endpoint: creds.Endpoint, creds: creds, http: &http.Client{}}, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
