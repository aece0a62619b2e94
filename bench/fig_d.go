package main

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sinks/kafkasink"
	"github.com/replayctl/replayctl/sources/windowsrc"
)

// dCompression is the batch compression of both writers: replayctl's
// default (kafka.compression), given to kcat with -z.
const dCompression = "zstd"

// figD: messages/s written by kafkasink and read by windowsrc, on the
// embedded broker and on the real Kafka, next to kcat producing (and
// consuming) the same payloads on the same broker.
func figD(ctx context.Context, e *env) ([]Row, Note, error) {
	var note Note
	n := e.scale(200_000, 20_000)
	msgs := dMessages(n)

	// The kcat input: key 0x1f value 0x1e, per message.
	var in bytes.Buffer
	for _, m := range msgs {
		in.WriteString(m.ConnID)
		in.WriteByte(0x1f)
		in.Write(m.Payload())
		in.WriteByte(0x1e)
	}
	kcatFile := filepath.Join(e.tmp, "d-kcat-input")
	if err := os.WriteFile(kcatFile, in.Bytes(), 0o644); err != nil {
		return nil, note, fmt.Errorf("kcat input: %w", err)
	}

	type broker struct {
		name  string
		addrs []string
	}
	emb, err := kafkaio.StartEmbedded(ctx, kafkaio.EmbeddedOptions{DataDir: filepath.Join(e.tmp, "d-embedded")})
	if err != nil {
		return nil, note, err
	}
	defer func() { _ = emb.Close() }()
	brokers := []broker{{"embedded", emb.Addrs()}}
	if e.kafka != "" {
		brokers = append(brokers, broker{"Kafka " + e.kafka, strings.Split(e.kafka, ",")})
	} else {
		note.Lines = append(note.Lines, "REPLAYCTL_TEST_KAFKA is not set: the real-Kafka rows were not measured (`make bench` sets it and starts Kafka with scripts/kafka-up).")
	}

	var rows []Row
	for _, b := range brokers {
		r, lines, err := e.kafkaFigures(ctx, b.name, b.addrs, msgs, kcatFile)
		note.Lines = append(note.Lines, lines...)
		if err != nil {
			rows = append(rows, Row{Fig: "d", What: b.name + ": Kafka throughput", Ours: "—", Ref: "—", Ratio: "—", Verdict: NotMeasured})
			note.Lines = append(note.Lines, fmt.Sprintf("**%s not measured:** %s", b.name, strings.ReplaceAll(err.Error(), "\n", " / ")))
			continue
		}
		rows = append(rows, r...)
	}
	note.Lines = append([]string{
		fmt.Sprintf("Payloads: %s GoReplay payloads of realistic GET requests (%d bytes on average, value = payload, key = connection ID), compression %s for both writers, topics of 4 partitions created fresh for each measurement.",
			num(float64(n)), avgPayload(msgs), dCompression),
		"replayctl write: `kafkasink.New` with `kafkasink.ProducerOpts(\"zstd\", 30s)` (idempotent, acks=all, linger 50 ms: `kafkasink.ProducerLinger`; kcat below lingers 5 ms) plus 6 headers per record; timed from the first Write to the end of Close (every record acknowledged).",
		fmt.Sprintf("Reference write: `kcat -P -b BROKER -t TOPIC -l FILE -K '\\x1f' -D '\\x1e' -z %s -X linger.ms=5` (librdkafka: acks=all by default), same payloads and keys, timed from start to exit.", dCompression),
		"replayctl read: `windowsrc` over the exact window [start, end) the write produced (merge by capture time, payload decode), timed from Run to its return; reference read: `kcat -C -b BROKER -t TOPIC -o beginning -e -q -X fetch.wait.max.ms=10` of the same records to /dev/null (the short fetch wait spares kcat a 500 ms long poll before it sees the end).",
		"No goal is set for (d): the rows are information next to kcat (librdkafka, C). The embedded broker runs in the harness process, so its CPU use counts against the replayctl side and kcat alike.",
	}, note.Lines...)
	return rows, note, nil
}

// dMessages builds n request messages like a capture would.
func dMessages(n int) []*message.Message {
	out := make([]*message.Message, n)
	t0 := time.Now().Add(-time.Hour).UnixNano()
	dst := netip.MustParseAddrPort("10.20.0.10:8080")
	for i := range out {
		id := message.NewID()
		c := i % 2000
		out[i] = &message.Message{Kind: message.Request, ID: id,
			ConnID: "10.30." + strconv.Itoa(c/250) + "." + strconv.Itoa(c%250+1) + ":" + strconv.Itoa(40000+c),
			Time:   t0 + int64(i)*int64(100*time.Microsecond),
			Src:    netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 30, byte(c / 250), byte(c%250 + 1)}), uint16(40000+c)),
			Dst:    dst, Raw: request(i, id)}
	}
	return out
}

func avgPayload(msgs []*message.Message) int {
	if len(msgs) == 0 {
		return 0
	}
	var n int
	for _, m := range msgs {
		n += len(m.Raw) + 50
	}
	return n / len(msgs)
}

// kafkaFigures measures one broker: kafkasink write, windowsrc read, kcat
// write and read.
func (e *env) kafkaFigures(ctx context.Context, name string, addrs []string, msgs []*message.Message, kcatFile string) ([]Row, []string, error) {
	n := len(msgs)
	conn := []kgo.Opt{kgo.SeedBrokers(addrs...), kgo.ClientID("replayctl-bench")}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err := kafkaio.Ping(pctx, conn...)
	cancel()
	if err != nil {
		return nil, nil, fmt.Errorf("broker does not answer: %w", err)
	}
	admCl, err := kgo.NewClient(conn...)
	if err != nil {
		return nil, nil, fmt.Errorf("kafka client: %w", err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topicOurs, topicKcat := "bench-d-replayctl-"+suffix, "bench-d-kcat-"+suffix
	for _, t := range []string{topicOurs, topicKcat} {
		if _, err := kafkaio.EnsureTopic(ctx, adm, t, 4, 1, nil); err != nil {
			return nil, nil, fmt.Errorf("topic %s: %w", t, err)
		}
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(dctx, topicOurs, topicKcat)
	}()
	bounded, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()

	// replayctl write.
	start, err := catalog.EndOffsets(bounded, adm, topicOurs)
	if err != nil {
		return nil, nil, err
	}
	popts, err := kafkasink.ProducerOpts(dCompression, 30*time.Second)
	if err != nil {
		return nil, nil, err
	}
	pcl, err := kgo.NewClient(append(append([]kgo.Opt(nil), conn...), popts...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("producer: %w", err)
	}
	sink := kafkasink.New(pcl, topicOurs, kafkasink.Options{RecordingID: "rec-bench-" + suffix, Host: "bench", DeliveryTimeout: 30 * time.Second})
	t0 := time.Now()
	for _, m := range msgs {
		if err := sink.Write(bounded, m); err != nil {
			pcl.Close()
			return nil, nil, err
		}
	}
	err = sink.Close(bounded)
	writeTime := time.Since(t0)
	pcl.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("kafka sink: %w", err)
	}
	if st := sink.Stats(); st["written"] != int64(n) {
		return nil, nil, fmt.Errorf("kafka sink wrote %d of %d messages", st["written"], n)
	}
	end, err := catalog.EndOffsets(bounded, adm, topicOurs)
	if err != nil {
		return nil, nil, err
	}

	// replayctl read.
	w := catalog.Window{Name: "bench-d", Topic: topicOurs, Partitions: catalog.Between(start, end)}
	src := windowsrc.New(conn, w, windowsrc.Options{})
	var got atomic.Int64
	t0 = time.Now()
	err = src.Run(bounded, func(*message.Message) error { got.Add(1); return nil })
	readTime := time.Since(t0)
	if err != nil {
		return nil, nil, fmt.Errorf("window source: %w", err)
	}
	if got.Load() != int64(n) {
		return nil, nil, fmt.Errorf("window source read %d of %d messages", got.Load(), n)
	}

	// kcat write and read.
	bootstrap := strings.Join(addrs, ",")
	kw, err := e.timedCmd(bounded, "kcat", "-P", "-b", bootstrap, "-t", topicKcat, "-l", kcatFile, "-K", `\x1f`, "-D", `\x1e`,
		"-z", dCompression, "-X", "linger.ms=5")
	if err != nil {
		return nil, nil, err
	}
	kEnd, err := catalog.EndOffsets(bounded, adm, topicKcat)
	if err != nil {
		return nil, nil, err
	}
	var kcatN int64
	for _, o := range kEnd {
		kcatN += o
	}
	if kcatN != int64(n) {
		return nil, nil, fmt.Errorf("kcat -P produced %d of %d messages", kcatN, n)
	}
	kr, err := e.timedCmd(bounded, "kcat", "-C", "-b", bootstrap, "-t", topicOurs, "-o", "beginning", "-e", "-q", "-X", "fetch.wait.max.ms=10")
	if err != nil {
		return nil, nil, err
	}

	rate := func(d time.Duration) float64 { return float64(n) / d.Seconds() }
	wRow := Row{Fig: "d", What: name + ": write (msgs/s)", Ours: num(rate(writeTime)) + " msgs/s (kafkasink)",
		Ref: "kcat -P " + num(rate(kw)) + " msgs/s", Ratio: fmt.Sprintf("%.2f", rate(writeTime)/rate(kw)), Verdict: Info}
	rRow := Row{Fig: "d", What: name + ": read (msgs/s)", Ours: num(rate(readTime)) + " msgs/s (windowsrc)",
		Ref: "kcat -C " + num(rate(kr)) + " msgs/s", Ratio: fmt.Sprintf("%.2f", rate(readTime)/rate(kr)), Verdict: Info}
	lines := []string{fmt.Sprintf("%s (%s): kafkasink wrote %d messages in %s, windowsrc read them in %s (both with their client start-up); kcat -P took %s and kcat -C %s (process start and exit included).",
		name, bootstrap, n, writeTime.Round(time.Millisecond), readTime.Round(time.Millisecond), kw.Round(time.Millisecond), kr.Round(time.Millisecond))}
	return []Row{wRow, rRow}, lines, nil
}

// timedCmd runs a command to its end (output discarded) and returns how long
// it took.
func (e *env) timedCmd(ctx context.Context, name string, args ...string) (time.Duration, error) {
	cmd := exec.Command(name, args...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	t0 := time.Now()
	if err := e.procs.start(cmd); err != nil {
		return 0, err
	}
	done := make(chan error, 1)
	go func() { done <- e.procs.wait(cmd) }()
	select {
	case err := <-done:
		d := time.Since(t0)
		if err != nil {
			return d, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, tail(errb.String(), 5))
		}
		return d, nil
	case <-ctx.Done():
		_ = e.procs.stop(cmd, syscall.SIGKILL, time.Second)
		return 0, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), ctx.Err())
	}
}
