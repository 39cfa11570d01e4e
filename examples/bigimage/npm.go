package bigimage

import (
	"archive/tar"
	"context"
	_ "embed"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
)

//go:embed node/package.json
var packageJSON []byte

// npmLayer installs node/package.json's packages with the host's npm into
// work/node-app and writes them as a layer tar under /app, unless
// work/node-modules.tar exists. Install scripts are not run: the npm
// packages with native parts ship them prebuilt as platform packages
// (linux x64 glibc, the image's platform), which npm selects itself.
func npmLayer(ctx context.Context, work string, log io.Writer) (string, error) {
	out := filepath.Join(work, "node-modules.tar")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", fmt.Errorf("bigimage: %w: apt-get install npm", err)
	}
	app := filepath.Join(work, "node-app")
	if err := os.MkdirAll(app, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(app, "package.json"), packageJSON, 0o644); err != nil {
		return "", err
	}
	fmt.Fprintf(log, "bigimage: npm install in %s\n", app)
	cmd := exec.CommandContext(ctx, npm, "install", "--ignore-scripts", "--no-audit", "--no-fund",
		"--omit=dev", "--cpu=x64", "--os=linux", "--libc=glibc")
	cmd.Dir, cmd.Stdout, cmd.Stderr = app, log, log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("bigimage: npm install: %w", err)
	}
	if err := tarDir(app, "app", out+".tmp"); err != nil {
		return "", err
	}
	return out, os.Rename(out+".tmp", out)
}

// tarDir writes dir's tree to out as a tar whose entries are named under
// prefix, owned by root, in lexical order.
func tarDir(dir, prefix, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		var link string
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(filepath.Join(prefix, rel))
		if d.IsDir() {
			h.Name += "/"
		}
		h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "root", "root"
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		src, err := os.Open(path)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}
