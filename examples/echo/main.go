// Command echo is an example function: an HTTP server on
// 0.0.0.0:$FC_CUSTOM_LISTEN_PORT (default 9000) that answers any request
// with JSON of its method, path, query, headers and body, and POST /invoke
// with the event body itself.
package main

import "github.com/fcd-dev/fcd/examples/echoserver"

func main() { echoserver.Serve("0.0.0.0", echoserver.Handler()) }
