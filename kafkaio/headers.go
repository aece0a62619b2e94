package kafkaio

// Record header names replayctl writes (kafkasink) and reads (windowsrc).
const (
	HeaderRecording = "replayctl-recording" // recording ID
	HeaderKind      = "replayctl-kind"      // request, response
	HeaderHost      = "replayctl-host"      // capturing host
	HeaderSrc       = "replayctl-src"       // client address ip:port
	HeaderDst       = "replayctl-dst"       // server address ip:port
	HeaderConn      = "replayctl-conn"      // connection ID
)
