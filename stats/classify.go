package stats

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// Error classes Classify returns.
const (
	ClassConnectRefused = "connect-refused"
	ClassTimeout        = "timeout"
	ClassReset          = "reset"
	ClassTLS            = "tls"
	ClassBadResponse    = "bad-response"
	ClassDial           = "dial"
	ClassCanceled       = "canceled"
	ClassOther          = "other"
)

// Classes lists every error class, in a stable order.
var Classes = []string{ClassConnectRefused, ClassTimeout, ClassReset, ClassTLS,
	ClassBadResponse, ClassDial, ClassCanceled, ClassOther}

// ErrBadResponse is wrapped by errors about responses that are not valid
// HTTP/1.x; Classify maps it to "bad-response".
var ErrBadResponse = errors.New("bad HTTP response")

// Classed is implemented by errors that know their class.
type Classed interface{ ErrClass() string }

// Classify returns the error class of err ("" for nil): connect-refused,
// timeout, reset (RST, broken pipe, or the peer closed mid-response),
// tls, bad-response, dial (other failures to connect: DNS, no route),
// canceled, or other.
func Classify(err error) string {
	if err == nil {
		return ""
	}
	var c Classed
	if errors.As(err, &c) {
		return c.ErrClass()
	}
	if errors.Is(err, ErrBadResponse) {
		return ClassBadResponse
	}
	if errors.Is(err, context.Canceled) {
		return ClassCanceled
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return ClassTimeout
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return ClassConnectRefused
	}
	var (
		hdr     tls.RecordHeaderError
		alert   tls.AlertError
		verify  *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
	)
	if errors.As(err, &hdr) || errors.As(err, &alert) || errors.As(err, &verify) ||
		errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid) {
		return ClassTLS
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return ClassReset
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ClassTimeout
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return ClassDial
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return ClassDial
	}
	return ClassOther
}
