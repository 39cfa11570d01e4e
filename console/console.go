// Package console is fcd's web console: the pages, styles and scripts a
// browser loads from /console/ on fcd's API address, embedded in the
// binary so the console works offline and with no CDN.
//
// It holds assets only. Everything the console shows it reads through
// fcd's public API (FC 3.0 paths and /fcd/v1/*) from the browser, signed
// in with a console session (package proxy, session.go): the console has
// no back door into fcd and no Go code of its own beyond serving files.
//
// The frontend is plain HTML, CSS and small vanilla JavaScript modules
// with no build step: what is in assets/ is what the browser runs.
package console

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/valyala/fasthttp"
)

//go:embed assets
var assets embed.FS

// Prefix is the path the console is served under.
const Prefix = "/console/"

// contentSecurityPolicy keeps every script, style and connection on fcd
// itself: no inline script, nothing from elsewhere.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

type file struct {
	body        []byte
	contentType string
}

// Handler serves the console's assets under Prefix: /console redirects to
// /console/, which serves index.html; unknown paths get 404.
func Handler() fasthttp.RequestHandler {
	files := map[string]file{}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		files[Prefix+strings.TrimPrefix(p, "assets/")] = file{body: b, contentType: ct}
		return nil
	})
	if err != nil {
		// The assets are compiled in: a failure here is a build defect.
		panic("console: reading embedded assets: " + err.Error())
	}
	files[Prefix] = files[Prefix+"index.html"]
	return func(ctx *fasthttp.RequestCtx) {
		p := string(ctx.Path())
		if p == strings.TrimSuffix(Prefix, "/") {
			ctx.Redirect(Prefix, http.StatusMovedPermanently)
			return
		}
		if !ctx.IsGet() && !ctx.IsHead() {
			ctx.Response.Header.Set("Allow", "GET, HEAD")
			ctx.Error("method not allowed", http.StatusMethodNotAllowed)
			return
		}
		f, ok := files[p]
		if !ok {
			ctx.Error("not found", http.StatusNotFound)
			return
		}
		h := &ctx.Response.Header
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		// The assets change with the binary: revalidate each load.
		h.Set("Cache-Control", "no-cache")
		h.SetContentType(f.contentType)
		ctx.SetBody(f.body)
	}
}
