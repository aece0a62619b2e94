package serve_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/internal/testutil"
	"github.com/replayctl/replayctl/serve"
)

// bus opens the fleet topics as anyone who may write to Kafka does.
func (e *env) bus(t *testing.T) *fleet.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := fleet.OpenBus(ctx, e.kafka(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// TestServeSecurity checks serve against hostile input: a `replayctl broker`
// subprocess, one replay agent and a serve instance on loopback.
func TestServeSecurity(t *testing.T) {
	e := setup(t, "")
	e.agent(t, "sec-1-"+e.suffix, "role=sec-"+e.suffix)
	a := e.server(t)
	read, replay, admin := e.tok["read"], e.tok["replay"], e.tok["admin"]
	sel := map[string]string{"role": "sec-" + e.suffix}
	tg := newTarget(t)
	bus := e.bus(t)
	ctx := context.Background()
	waitAgents(t, a, read, e.suffix, 1)

	t.Run("every answer says nosniff and may not be framed", func(t *testing.T) {
		for _, c := range []struct{ method, path, token string }{
			{"GET", "/v1/jobs", read},
			{"GET", "/v1/nope/<script>", read},
			{"GET", "/v1/jobs", ""},
			{"GET", "/v1/jobs/none/logs", read},
			{"GET", "/healthz", ""},
			{"GET", "/v1/openapi.json", ""},
			{"GET", "/metrics", ""},
			{"GET", "/", ""},
			{"GET", "/app.js", ""},
			{"PUT", "/v1/jobs", read},
		} {
			req, _ := http.NewRequest(c.method, a+c.path, nil)
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("%s %s (%d): X-Content-Type-Options %q, want nosniff", c.method, c.path, resp.StatusCode, got)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("%s %s (%d): Content-Security-Policy %q, want frame-ancestors 'none'", c.method, c.path, resp.StatusCode, csp)
			}
		}
	})

	// A spec on the jobs topic is only as trusted as its signature: anyone
	// who may write to Kafka can publish one, with any scenario text. Run
	// again must not sign such a text with serve's key (agents would run
	// it), nor take a scenario from anywhere but the scenarios directory.
	//
	// Nor may the API or the UI show such a spec's submitter as the
	// submitter: only a spec whose signature verifies against serve's key
	// or a --trust key names one.
	_, rogue, _ := ed25519.GenerateKey(rand.Reader)
	_, cliKey, _ := ed25519.GenerateKey(rand.Reader)
	trusting := e.server(t, func(c *serve.Config) { c.Trust = []ed25519.PublicKey{cliKey.Public().(ed25519.PublicKey)} })
	t.Run("run again signs only what serve signed", func(t *testing.T) {
		text := strings.NewReplacer("WINDOW", e.window, "http://127.0.0.1:9", tg.url).Replace(replayYAML)
		for _, c := range []struct {
			name     string
			key      ed25519.PrivateKey
			verified bool   // on the serve that trusts cliKey
			why      string // on the one that does not
		}{
			{"unsigned", nil, false, "unsigned spec"},
			{"signed by another key", rogue, false, "signed by a key this serve does not trust"},
			{"signed by a trusted key", cliKey, true, "signed by a key this serve does not trust"},
		} {
			t.Run(c.name, func(t *testing.T) {
				id := "forged-" + strings.ReplaceAll(c.name, " ", "-") + "-" + e.suffix
				now := time.Now().UTC()
				sp := fleet.Spec{JobID: id, Kind: fleet.KindReplay, Job: "replay", Scenario: text, SHA256: fleet.ScenarioHash(text),
					File: "not-in-the-directory.yaml", Selector: sel, IssuedAt: now, ExpiresAt: now.Add(10 * time.Minute), Submitter: "mallory"}
				env, err := fleet.Seal("spec", sp, c.key)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := bus.Publish(ctx, fleet.JobsTopic, "spec/"+id, env); err != nil {
					t.Fatal(err)
				}
				if err := bus.PublishStatus(ctx, "job/"+id, fleet.Status{JobID: id, Kind: fleet.KindReplay, State: fleet.Refused, Reason: "unsigned spec", At: now}); err != nil {
					t.Fatal(err)
				}
				var v serve.JobView
				waitJob(t, a, read, id, 30*time.Second, func(v serve.JobView) bool { return v.State == fleet.Refused })
				// Who submitted it: verified or only claimed, alike in the
				// job and in the list, on either instance.
				for _, srv := range []struct {
					base     string
					verified bool
					why      string
				}{{a, false, c.why}, {trusting, c.verified, ""}} {
					var one serve.JobView
					if code := call(t, "GET", srv.base+"/v1/jobs/"+id, read, nil, &one); code != 200 {
						t.Fatalf("GET job: %d", code)
					}
					var list []serve.JobView
					listAll(t, srv.base+"/v1/jobs?state=REFUSED", read, &list)
					i := slices.IndexFunc(list, func(j serve.JobView) bool { return j.ID == id })
					if i < 0 {
						t.Fatalf("job %s is not listed", id)
					}
					for where, got := range map[string]serve.JobView{"job": one, "list": list[i]} {
						switch {
						case got.Verified != srv.verified || !strings.Contains(got.Unverified, srv.why):
							t.Errorf("%s on %s: verified %v (%q), want %v (%q)", where, srv.base, got.Verified, got.Unverified, srv.verified, srv.why)
						case srv.verified && (got.Submitter != "mallory" || got.Signer != fleet.Fingerprint(cliKey.Public().(ed25519.PublicKey))):
							t.Errorf("%s: a verified spec shows submitter %q signer %q", where, got.Submitter, got.Signer)
						case !srv.verified && (got.Submitter != "" || got.ClaimedSubmitter != "mallory"):
							t.Errorf("%s: an unverified spec shows submitter %q (claimed %q): want none, claimed mallory", where, got.Submitter, got.ClaimedSubmitter)
						}
					}
				}
				var er struct{ Error, ID string }
				code := call(t, "POST", trusting+"/v1/jobs/"+id+"/rerun", admin, nil, &er)
				if code != http.StatusConflict || !strings.Contains(er.Error, "not signed by this serve's key") {
					t.Errorf("rerun of a spec serve did not sign: %d %+v, want 409", code, er)
				}
				if er.ID != "" {
					call(t, "GET", a+"/v1/jobs/"+er.ID, read, nil, &v)
					t.Errorf("serve signed and published a forged spec as job %s (%s)", er.ID, v.State)
				}
			})
		}
	})

	// gor/stop takes scope replay: it stops only replay jobs, whatever their
	// ID (a record token may submit a record job called gor-…).
	t.Run("gor stop stops only what the token may cancel", func(t *testing.T) {
		id, host := "gor-rec-"+e.suffix, "rec-host-"+e.suffix
		if err := bus.PublishStatus(ctx, "job/"+id, fleet.Status{JobID: id, Kind: fleet.KindRecord, State: fleet.Running, Agents: []string{host}, At: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
		waitJob(t, a, read, id, 30*time.Second, func(v serve.JobView) bool { return v.State == fleet.Running })
		var er struct{ Error string }
		if code := call(t, "POST", a+"/v1/compat/gor/stop", replay, map[string]any{"id": id}, &er); code != http.StatusForbidden || !strings.Contains(er.Error, `lacks scope "record"`) {
			t.Errorf("gor stop of a record job by ID with a replay token: %d %q, want 403", code, er.Error)
		}
		var out struct {
			Stopped []struct{ ID, Error string }
		}
		if code := call(t, "POST", a+"/v1/compat/gor/stop", replay, map[string]any{"hosts": []string{host}}, &out); code != 200 || len(out.Stopped) != 1 || !strings.Contains(out.Stopped[0].Error, `lacks scope "record"`) {
			t.Errorf("gor stop of a record job by host with a replay token: %d %+v, want it named, not stopped", code, out)
		}
		if err := bus.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		for _, jr := range bus.Jobs(0) {
			if jr.Key == "cancel/"+id {
				t.Errorf("a cancel of record job %s was published for a replay token", id)
			}
		}
	})

	// A gor command line may carry a target's password or an
	// Authorization header: the window saved for it (GET /v1/windows, any
	// read token) shows the command line masked, as import gor does.
	t.Run("gor compat window keeps no secret of the command line", func(t *testing.T) {
		id := "gor-sec-" + e.suffix
		u := strings.Replace(tg.url, "http://", "http://ops:hunter2-"+e.suffix+"@", 1)
		config := fmt.Sprintf("--input-kafka-host k1:9092 --input-kafka-topic serve-http-%s --input-kafka-start-offset 0 --input-kafka-end-offset 1 --output-http %s --output-http-header 'Authorization: Bearer s3cret-%s' --exit-after 30s", e.suffix, u, e.suffix)
		raw := map[string]any{}
		code := call(t, "POST", a+"/v1/compat/gor/start", replay, map[string]any{"config": config, "hosts": []string{"sec-1-" + e.suffix}, "id": id}, &raw)
		if code != http.StatusCreated {
			t.Fatalf("gor start: %d %v", code, raw)
		}
		for _, path := range []string{"/v1/windows/gor-sec-" + e.suffix, "/v1/windows", "/v1/jobs/" + id} {
			req, _ := http.NewRequest("GET", a+path, nil)
			req.Header.Set("Authorization", "Bearer "+read)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("GET %s: %d", path, resp.StatusCode)
			}
			for _, secret := range []string{"hunter2-" + e.suffix, "s3cret-" + e.suffix} {
				if strings.Contains(string(body), secret) {
					t.Errorf("GET %s shows %q:\n%s", path, secret, body)
				}
			}
		}
		waitJob(t, a, read, id, 60*time.Second, func(v serve.JobView) bool { return v.State.Final() })
	})

	// ReadHeaderTimeout covers headers only: a client trickling a body
	// must not hold its connection (and a goroutine) for ever.
	t.Run("a slow body is cut", func(t *testing.T) {
		slow := e.server(t, func(c *serve.Config) { c.BodyTimeout = time.Second })
		for _, c := range []struct{ name, head, part string }{
			{"content-length", "Content-Length: 200\r\n", `{"scenario": "replay.yaml"`},
			{"chunked", "Transfer-Encoding: chunked\r\n", "5\r\n{\"a\":\r\n"},
			{"a page that reads no body", "Content-Length: 200000\r\n", "x"},
		} {
			t.Run(c.name, func(t *testing.T) {
				conn, err := net.Dial("tcp", strings.TrimPrefix(slow, "http://"))
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				method, path := "POST", "/v1/jobs"
				if strings.HasPrefix(c.name, "a page") {
					method, path = "GET", "/"
				}
				fmt.Fprintf(conn, method+" "+path+" HTTP/1.1\r\nHost: serve\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n%s\r\n%s", admin, c.head, c.part)
				start := time.Now()
				_ = conn.SetReadDeadline(time.Now().Add(8 * time.Second))
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatalf("no answer %s after a partial body: %v", time.Since(start).Round(time.Millisecond), err)
				}
				body, _ := io.ReadAll(resp.Body)
				if method == "GET" {
					// The page is answered; the connection then closes
					// once the rest of the body does not come.
					if _, err := conn.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
						t.Errorf("the connection stays open %s after the answer (%v)", time.Since(start).Round(time.Millisecond), err)
					}
					return
				}
				if resp.StatusCode != http.StatusRequestTimeout {
					t.Errorf("%d %s, want 408", resp.StatusCode, body)
				}
			})
		}
		// A body sent in time is read whole.
		body := map[string]any{"scenario": "replay.yaml", "job": "replay", "selector": map[string]string{"role": "ghost"}}
		var er struct{ Error string }
		if code := call(t, "POST", slow+"/v1/jobs", admin, body, &er); code != http.StatusUnprocessableEntity {
			t.Errorf("a whole body: %d %q, want 422", code, er.Error)
		}
	})

	// /healthz needs no token: it says whether Kafka answers, not where
	// Kafka is or what it said (serve's log has that).
	t.Run("healthz shows no broker address to anyone", func(t *testing.T) {
		addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
		broker := bin.Start(t, e.dir, "broker", "--listen", addr, "--data-dir", filepath.Join(e.dir, "broker-health"), "--partitions", "1")
		other := *e
		other.brokers = addr
		testutil.WaitListening(t, addr)
		base := other.server(t)
		var ok map[string]string
		if code := call(t, "GET", base+"/healthz", "", nil, &ok); code != 200 {
			t.Fatalf("healthz: %d %v", code, ok)
		}
		_ = broker.Cmd.Process.Kill()
		_ = broker.Cmd.Wait()
		var down map[string]string
		code := call(t, "GET", base+"/healthz", "", nil, &down)
		if code != http.StatusServiceUnavailable {
			t.Fatalf("healthz with the broker down: %d %v", code, down)
		}
		_, port, _ := net.SplitHostPort(addr)
		for k, v := range down {
			if strings.Contains(v, port) || strings.Contains(v, "dial") {
				t.Errorf("healthz %s = %q: an unauthenticated answer names the broker", k, v)
			}
		}
	})

	// Cancel needs the scope of the job's kind, record or replay. The kind
	// comes from the status topic, which anyone with write access to Kafka
	// writes: a status saying kind "read" must not let a read token cancel
	// (serve would sign the cancel).
	t.Run("cancel needs a record or replay scope whatever the status says", func(t *testing.T) {
		for _, kind := range []string{"read", "", "admin"} {
			id := "odd-kind-" + kind + "-" + e.suffix
			if err := bus.PublishStatus(ctx, "job/"+id, fleet.Status{JobID: id, Kind: kind, State: fleet.Running, Agents: []string{"x"}, At: time.Now().UTC()}); err != nil {
				t.Fatal(err)
			}
			gid := "gor-odd-kind-" + kind + "-" + e.suffix
			if err := bus.PublishStatus(ctx, "job/"+gid, fleet.Status{JobID: gid, Kind: kind, State: fleet.Running, Agents: []string{"x"}, At: time.Now().UTC()}); err != nil {
				t.Fatal(err)
			}
			waitJob(t, a, read, id, 30*time.Second, func(v serve.JobView) bool { return v.State == fleet.Running })
			var er struct{ Error string }
			if code := call(t, "POST", a+"/v1/jobs/"+id+"/cancel", read, nil, &er); code != http.StatusForbidden {
				t.Errorf("kind %q: a read token cancels: %d %q, want 403", kind, code, er.Error)
			}
			if code := call(t, "POST", a+"/v1/jobs/"+id+"/cancel", replay, nil, &er); code != http.StatusForbidden {
				t.Errorf("kind %q: a replay token cancels: %d %q, want 403", kind, code, er.Error)
			}
			if code := call(t, "POST", a+"/v1/compat/gor/stop", replay, map[string]any{"id": gid}, &er); code != http.StatusForbidden {
				t.Errorf("kind %q: a replay token stops it through gor/stop: %d %q, want 403", kind, code, er.Error)
			}
		}
	})
}
