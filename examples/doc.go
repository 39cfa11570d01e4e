// Package examples holds runnable example functions and the tooling that
// builds their container images without a Docker engine:
//
//   - echo: an HTTP server on 0.0.0.0:$FC_CUSTOM_LISTEN_PORT (default 9000)
//     that answers any request with JSON of its method, path, query,
//     headers and body; POST /invoke answers with the event body itself.
//   - echo-localhost: the same server bound to 127.0.0.1, which fcd cannot
//     reach: its start must fail with FunctionNotStarted.
//   - misbehave: the echo server plus failure modes for tests (exit at
//     start, allocate until OOM-killed, exit mid-request, sleep, fill the disk).
//   - probe: the echo server plus reports of its sandbox (capabilities,
//     seccomp mode, TCP reachability of an address, AF_PACKET sockets).
//   - images: builds those images with go-containerregistry and pushes them.
//   - cmd/push-images: `go run ./examples/cmd/push-images -registry host:port`.
package examples
