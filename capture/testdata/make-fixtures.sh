#!/usr/bin/env bash
# Regenerates the capture fixtures: for each, a loopback HTTP server
# (fixtool serve) records the exact bytes of every connection into
# NAME.golden.json while `tcpdump -i lo -w NAME.pcap -U port N` captures
# the same traffic driven by curl, wrk or fixtool clients. The pcapng
# fixtures are written by Wireshark's tools: NAME.pcapng is
# `editcap -F pcapng NAME.pcap NAME.pcapng`, and tshark.pcapng is captured
# live by `tshark -i lo -w tshark.pcapng -f "tcp port N"` (tshark writes
# pcapng by default).
# Run as root: ./make-fixtures.sh [NAME...]
set -euo pipefail
cd "$(dirname "$0")"
go build -o /tmp/fixtool ./fixtool

# fixture NAME HOST PORT CLIENT-COMMANDS...
fixture() {
	local name=$1 host=$2 port=$3
	shift 3
	local url="http://$host:$port"
	[[ $host == *:* ]] && url="http://[$host]:$port"
	local addr="$host:$port"
	[[ $host == *:* ]] && addr="[$host]:$port"
	rm -f "$name.pcap" "$name.pcapng" "$name.golden.json"
	local td
	if [[ ${CAPTURER:-tcpdump} == tshark ]]; then
		tshark -i lo -w "$name.pcapng" -f "tcp port $port" 2>"/tmp/tshark-$name.log" &
		td=$!
		for _ in $(seq 100); do grep -q "Capturing on" "/tmp/tshark-$name.log" && break; sleep 0.1; done
	else
		tcpdump -i lo --immediate-mode -w "$name.pcap" -U -Z root "tcp port $port" 2>"/tmp/tcpdump-$name.log" &
		td=$!
		for _ in $(seq 50); do grep -q "listening on" "/tmp/tcpdump-$name.log" && break; sleep 0.1; done
	fi
	/tmp/fixtool serve -addr "$addr" -golden "$name.golden.json" >"/tmp/fixtool-$name.log" &
	local srv=$!
	for _ in $(seq 50); do grep -q ready "/tmp/fixtool-$name.log" && break; sleep 0.1; done
	for cmd in "$@"; do
		cmd=${cmd//URL/$url}
		cmd=${cmd//ADDR/$addr}
		echo "$name: $cmd"
		eval "$cmd" >/dev/null
	done
	sleep 0.3
	kill -INT $srv; wait $srv
	sleep 0.3
	kill -INT $td; wait $td || true
	[[ -f $name.pcapng ]] && chmod 644 "$name.pcapng"
	if [[ -f $name.pcap ]]; then
		editcap -F pcapng "$name.pcap" "$name.pcapng"
	fi
}

want=" $* "
run() { [[ $# -eq 0 || "$want" == "  " || "$want" == *" $1 "* ]]; }

run get && fixture get 127.0.0.1 18081 'curl -s URL/hello'
run post && fixture post 127.0.0.1 18082 'curl -s -d "name=gopher&lang=go" URL/form'
run chunked && fixture chunked 127.0.0.1 18083 \
	'printf "first chunk of the upload\nsecond line\n" | curl -s -H "Transfer-Encoding: chunked" --data-binary @- URL/chunked'
run keepalive && fixture keepalive 127.0.0.1 18084 'curl -s URL/one URL/two URL/three'
run pipeline && fixture pipeline 127.0.0.1 18085 '/tmp/fixtool pipeline -addr ADDR -paths /p1,/p2,/p3'
run expect && fixture expect 127.0.0.1 18086 \
	'head -c 3000 /dev/zero | tr "\0" x | curl -s -H "Expect: 100-continue" --data-binary @- URL/upload'
run head && fixture head 127.0.0.1 18087 'curl -s -I URL/hello'
run status && fixture status 127.0.0.1 18088 'curl -s URL/204 URL/304 URL/after'
run close && fixture close 127.0.0.1 18089 'curl -s -H "Connection: close" URL/bye' 'curl -s --http1.0 URL/stream'
run http10 && fixture http10 127.0.0.1 18090 'curl -s --http1.0 URL/old'
run ipv6 && fixture ipv6 ::1 18091 'curl -s -g URL/six'
run large && fixture large 127.0.0.1 18092 'curl -s URL/large'
run wrk && fixture wrk 127.0.0.1 18093 'wrk -c4 -t2 -d1s URL/slow'
# Captured live by tshark instead of tcpdump: a pcapng file from the start.
run tshark && CAPTURER=tshark fixture tshark 127.0.0.1 18094 \
	'curl -s URL/one URL/two URL/three' 'curl -s -d "name=gopher&lang=go" URL/form'

# The synthetic fixtures (no capture: packets built with gopacket), with
# their golden files: synth-NAME.pcap, synth-NAME.golden.json.
run synth && /tmp/fixtool synth -out .

# The quickstart capture: ~200 requests on port 8080 over 4 keep-alive
# connections, spread over ~5 s.
if run quickstart; then
	fixture quickstart 127.0.0.1 8080 '/tmp/fixtool load -addr ADDR -conns 4 -n 50 -every 100ms'
	mv quickstart.pcap ../../examples/quickstart.pcap
	rm -f quickstart.golden.json quickstart.pcapng
fi
