package kafkaio

// Record header names replayctl writes (kafkasink) and reads (windowsrc).
const (
	HeaderRecording = "replayctl-recording" // recording ID
	HeaderKind      = "replayctl-kind"      // request, response
	HeaderHost      = "replayctl-host"      // capturing host
	HeaderSrc       = "replayctl-src"       // client address ip:port
	HeaderDst       = "replayctl-dst"       // server address ip:port
	HeaderConn      = "replayctl-conn"      // connection ID
	// HeaderTruncated is "1" on a message whose body was cut at the
	// capture's max-body (absent otherwise).
	HeaderTruncated = "replayctl-truncated"
	HeaderProto     = "replayctl-proto" // "HTTP/2.0" for messages captured from HTTP/2; absent for HTTP/1.x
)
