package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/fcd-dev/fcd/api"
)

const functionUsage = `Usage:
  fcctl function create NAME --image IMAGE [spec flags]
  fcctl function get NAME [-o json]
  fcctl function list [--prefix P] [--tag K=V]... [--limit N] [-o json]
  fcctl function update NAME [spec flags]      (only the flags given change)
  fcctl function delete NAME
  fcctl function coldstarts NAME [-n N] [-w] [-o json]   last instance starts, phase by phase (-w: waterfall)
  fcctl function disable NAME [--reason R]     refuse invocations until enabled
  fcctl function enable NAME
`

func runFunction(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	verb, args, err := subcommand("function", functionUsage, args, stderr)
	if err != nil {
		return err
	}
	switch verb {
	case "create", "update":
		return functionWrite(ctx, c, verb, args, stdout, stderr)
	case "get":
		return functionGet(ctx, c, args, stdout, stderr)
	case "list", "ls":
		return functionList(ctx, c, args, stdout, stderr)
	case "delete", "rm":
		return functionDelete(ctx, c, args, stdout, stderr)
	case "coldstarts":
		return functionColdStarts(ctx, c, args, stdout, stderr)
	case "disable", "enable":
		return functionInvocation(ctx, c, verb, args, stdout, stderr) // versions.go
	default:
		return unknownSubcommand("function", verb, functionUsage, stderr)
	}
}

// specFlags are the function fields settable from the command line.
type specFlags struct {
	file, image, description, role, acceleration string
	entrypoint, command                          string
	memory, disk, timeout, concurrency, port     int
	cpu                                          float64
	env                                          multiFlag
	initializerTimeout, preStopTimeout           int
	options                                      optionFlags
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func (s *specFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.file, "file", "", "JSON body (FC CreateFunction/UpdateFunction input) to start from; - reads stdin")
	fs.StringVar(&s.image, "image", "", "container image reference")
	fs.StringVar(&s.description, "description", "", "description")
	fs.StringVar(&s.role, "role", "", "role ARN acs:ram::<account>:role/<name>")
	fs.StringVar(&s.acceleration, "acceleration", "", "image acceleration: Default or None")
	fs.StringVar(&s.entrypoint, "entrypoint", "", `entrypoint override: JSON array ["/bin/app","-x"] or space-separated words`)
	fs.StringVar(&s.command, "command", "", `command (CMD) override: JSON array or space-separated words`)
	fs.IntVar(&s.memory, "memory", 0, "memory size in MB (128..32768, multiple of 64)")
	fs.Float64Var(&s.cpu, "cpu", 0, "vCPUs (multiple of 0.05)")
	fs.IntVar(&s.disk, "disk", 0, "disk size in MB (512 or 10240)")
	fs.IntVar(&s.timeout, "timeout", 0, "invocation timeout in seconds")
	fs.IntVar(&s.concurrency, "concurrency", 0, "requests one instance serves at once (1..200)")
	fs.IntVar(&s.port, "port", 0, "port the container's HTTP server listens on (CAPort)")
	fs.Var(&s.env, "env", "environment variable KEY=VALUE (repeatable); --env - clears them all on update")
	fs.IntVar(&s.initializerTimeout, "initializer-timeout", 0, "enable the /initialize hook with this timeout (s)")
	fs.IntVar(&s.preStopTimeout, "prestop-timeout", 0, "enable the /pre-stop hook with this timeout (s)")
	s.options.register(fs)
}

// input builds the request body from the flags that were set.
func (s *specFlags) input(fs *flag.FlagSet, name string, create bool) (*api.Input, error) {
	in := &api.Input{}
	if s.file != "" {
		if err := readJSONFile(s.file, in); err != nil {
			return nil, err
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if create {
		in.FunctionName = &name
		if in.Runtime == nil {
			rt := api.RuntimeCustomContainer
			in.Runtime = &rt
		}
	}
	cc := in.CustomContainerConfig
	if cc == nil {
		cc = &api.ContainerInput{}
	}
	strs := []struct {
		flag string
		dst  **string
		val  string
	}{
		{"image", &cc.Image, s.image},
		{"acceleration", &cc.AccelerationType, s.acceleration},
		{"description", &in.Description, s.description},
		{"role", &in.Role, s.role},
	}
	for _, f := range strs {
		if set[f.flag] {
			v := f.val
			*f.dst = &v
		}
	}
	ints := []struct {
		flag string
		dst  **int32
		val  int
	}{
		{"memory", &in.MemorySize, s.memory},
		{"disk", &in.DiskSize, s.disk},
		{"timeout", &in.Timeout, s.timeout},
		{"concurrency", &in.InstanceConcurrency, s.concurrency},
		{"port", &cc.Port, s.port},
	}
	for _, f := range ints {
		if set[f.flag] {
			v := int32(f.val)
			*f.dst = &v
		}
	}
	if set["cpu"] {
		v := float32(s.cpu)
		in.CPU = &v
	}
	var err error
	if set["entrypoint"] {
		if cc.Entrypoint, err = parseWords(s.entrypoint); err != nil {
			return nil, fmt.Errorf("%w: --entrypoint: %v", errUsage, err)
		}
	}
	if set["command"] {
		if cc.Command, err = parseWords(s.command); err != nil {
			return nil, fmt.Errorf("%w: --command: %v", errUsage, err)
		}
	}
	if set["env"] {
		in.EnvironmentVariables = map[string]string{}
		for _, kv := range s.env {
			if kv == "-" {
				continue
			}
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, fmt.Errorf("%w: --env %q is not KEY=VALUE", errUsage, kv)
			}
			in.EnvironmentVariables[k] = v
		}
	}
	if set["initializer-timeout"] || set["prestop-timeout"] {
		lc := in.InstanceLifecycleConfig
		if lc == nil {
			lc = &api.InstanceLifecycleConfig{}
		}
		if set["initializer-timeout"] {
			lc.Initializer = &api.LifecycleHook{Handler: "initialize", Timeout: int32(s.initializerTimeout)}
		}
		if set["prestop-timeout"] {
			lc.PreStop = &api.LifecycleHook{Handler: "pre-stop", Timeout: int32(s.preStopTimeout)}
		}
		in.InstanceLifecycleConfig = lc
	}
	if err := s.options.apply(set, in, create); err != nil {
		return nil, err
	}
	if cc.Image != nil || cc.AccelerationType != nil || cc.Port != nil || cc.Entrypoint != nil || cc.Command != nil || cc.HealthCheckConfig != nil {
		in.CustomContainerConfig = cc
	}
	return in, nil
}

// parseWords accepts a JSON array of strings or space-separated words.
func parseWords(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") {
		var out []string
		err := json.Unmarshal([]byte(s), &out)
		return out, err
	}
	return strings.Fields(s), nil
}

func readJSONFile(path string, v any) error {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func functionWrite(ctx context.Context, c *client, verb string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("function "+verb, stderr)
	var spec specFlags
	spec.register(fs)
	output := fs.String("o", "", "output format: json")
	name, err := parseWithName(fs, args)
	if err != nil {
		return err
	}
	in, err := spec.input(fs, name, verb == "create")
	if err != nil {
		return err
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	method, path := http.MethodPost, "/"+api.Version+"/functions"
	if verb == "update" {
		method, path = http.MethodPut, path+"/"+url.PathEscape(name)
	}
	_, data, err := c.do(ctx, method, path, nil, body, nil)
	if err != nil {
		return err
	}
	return printFunction(stdout, data, *output)
}

func functionGet(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("function get", stderr)
	output := fs.String("o", "", "output format: json")
	qualifier := fs.String("qualifier", "", "LATEST (the default), a version or an alias")
	name, err := parseWithName(fs, args)
	if err != nil {
		return err
	}
	var q url.Values
	if *qualifier != "" {
		q = url.Values{"qualifier": {*qualifier}}
	}
	_, data, err := c.do(ctx, http.MethodGet, "/"+api.Version+"/functions/"+url.PathEscape(name), q, nil, nil)
	if err != nil {
		return err
	}
	return printFunctionView(stdout, data, *output) // versions.go
}

func functionDelete(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("function delete", stderr)
	name, err := parseWithName(fs, args)
	if err != nil {
		return err
	}
	if _, _, err := c.do(ctx, http.MethodDelete, "/"+api.Version+"/functions/"+url.PathEscape(name), nil, nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "deleted %s\n", name)
	return nil
}

func functionList(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("function list", stderr)
	output := fs.String("o", "", "output format: json")
	prefix := fs.String("prefix", "", "only functions whose name starts with this")
	limit := fs.Int("limit", 0, "at most this many (0: all, paging through)")
	var tags multiFlag
	fs.Var(&tags, "tag", "only functions with this tag KEY=VALUE, or KEY with any value (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	q := url.Values{}
	if *prefix != "" {
		q.Set("prefix", *prefix)
	}
	if len(tags) > 0 {
		ts, err := parseTags(tags)
		if err != nil {
			return err
		}
		data, _ := json.Marshal(ts)
		q.Set("tags", string(data))
	}
	all, err := listPages[api.Function](ctx, c, "/"+api.Version+"/functions", q, fcPaging, "functions", *limit)
	if err != nil {
		return err
	}
	if *output == "json" {
		return writeIndented(stdout, map[string]any{"functions": all})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tIMAGE\tMEMORY\tCPU\tTIMEOUT\tCONCURRENCY\tSTATE")
	for _, f := range all {
		image := ""
		if f.CustomContainerConfig != nil {
			image = f.CustomContainerConfig.Image
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%g\t%d\t%d\t%s\n", f.FunctionName, image, f.MemorySize, f.CPU, f.Timeout, f.InstanceConcurrency, f.State)
	}
	return tw.Flush()
}

func printFunction(w io.Writer, data []byte, output string) error {
	var f api.Function
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	if output == "json" {
		return writeIndented(w, f)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	row("Name", f.FunctionName)
	row("ID", f.FunctionID)
	row("ARN", f.FunctionArn)
	if cc := f.CustomContainerConfig; cc != nil {
		row("Image", cc.Image)
		if len(cc.Entrypoint) > 0 {
			row("Entrypoint", strings.Join(cc.Entrypoint, " "))
		}
		if len(cc.Command) > 0 {
			row("Command", strings.Join(cc.Command, " "))
		}
		row("Port", cc.Port)
		acc := cc.AccelerationType
		if cc.AccelerationInfo != nil {
			acc += " (" + cc.AccelerationInfo.Status + ")"
		}
		row("Acceleration", acc)
	}
	row("Memory", fmt.Sprintf("%d MB", f.MemorySize))
	row("CPU", f.CPU)
	row("Disk", fmt.Sprintf("%d MB", f.DiskSize))
	row("Timeout", fmt.Sprintf("%d s", f.Timeout))
	row("Concurrency", f.InstanceConcurrency)
	if f.Role != "" {
		row("Role", f.Role)
	}
	for k, v := range f.EnvironmentVariables {
		row("Env", k+"="+v)
	}
	printOptions(row, &f)
	row("State", f.State+" / "+f.LastUpdateStatus)
	row("Created", f.CreatedTime)
	row("Modified", f.LastModifiedTime)
	return tw.Flush()
}

func writeIndented(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("fcctl "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseWithName parses flags around exactly one positional NAME, which may
// come before or after the flags.
func parseWithName(fs *flag.FlagSet, args []string) (string, error) {
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return "", err
		}
	}
	if name == "" || fs.NArg() > 0 {
		return "", fmt.Errorf("%w: %s takes exactly one function name", errUsage, fs.Name())
	}
	return name, nil
}
