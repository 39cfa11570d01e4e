// Command echo-localhost is the echo server bound to 127.0.0.1 instead of
// 0.0.0.0. fcd reaches an instance through its own address, so this
// function never becomes ready: its start fails with FunctionNotStarted.
package main

import "github.com/fcd-dev/fcd/examples/echoserver"

func main() { echoserver.Serve("127.0.0.1", echoserver.Handler()) }
