#!/usr/bin/env bash
# Regenerates the HTTP/2 capture fixtures: for each, a loopback server
# (h2fixtool h2c: a Go h2c server; h2fixtool grpc: a grpc-go health server)
# writes what it received and answered into NAME.golden.json while
# `tcpdump -i lo -w NAME.pcap -U port N` captures the traffic driven by
# curl (prior knowledge, Upgrade: h2c), a Go HTTP/2 client (concurrent streams
# on one connection, CONTINUATION, request trailers)
# or by the grpc-go client (unary and server-streaming calls).
# Run as root: ./make-h2-fixtures.sh [NAME...]
set -euo pipefail
cd "$(dirname "$0")"
go build -o /tmp/h2fixtool ./h2fixtool

# fixture NAME SERVER PORT CLIENT-COMMANDS...
fixture() {
	local name=$1 server=$2 port=$3
	shift 3
	local url="http://127.0.0.1:$port" addr="127.0.0.1:$port"
	rm -f "$name.pcap" "$name.golden.json"
	tcpdump -i lo -B 65536 --immediate-mode -w "$name.pcap" -U -Z root "tcp port $port" 2>"/tmp/tcpdump-$name.log" &
	local td=$!
	for _ in $(seq 50); do grep -q "listening on" "/tmp/tcpdump-$name.log" && break; sleep 0.1; done
	/tmp/h2fixtool "$server" -addr "$addr" -golden "$name.golden.json" >"/tmp/h2fixtool-$name.log" &
	local srv=$!
	for _ in $(seq 50); do grep -q ready "/tmp/h2fixtool-$name.log" && break; sleep 0.1; done
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
	if ! grep -q "^0 packets dropped by kernel" "/tmp/tcpdump-$name.log"; then
		echo "$name: tcpdump dropped packets; run again" >&2
		return 1
	fi
}

want=" $* "
run() { [[ $# -eq 0 || "$want" == "  " || "$want" == *" $1 "* ]]; }

run h2c-prior && fixture h2c-prior h2c 28471 \
	'curl -s --http2-prior-knowledge -H "x-seq: p1" URL/hello' \
	'curl -s --http2-prior-knowledge -H "x-seq: p2" -d "name=gopher&lang=go" URL/form' \
	'curl -s --http2-prior-knowledge -H "x-seq: p3" "URL/missing/page?q=1"' \
	'/tmp/h2fixtool h2c-client -addr ADDR -n 6'
run h2c-upgrade && fixture h2c-upgrade h2c 28472 \
	'curl -s --http2 -H "x-seq: u1" URL/upgraded' \
	'curl -s --http2 -H "x-seq: u2" URL/again'
run grpc && fixture grpc grpc 28473 '/tmp/h2fixtool grpc-client -addr ADDR -n 8 -watch 2'

# tshark's HTTP/2 dissector is the reference for the header fields: one line
# per packet, "names<TAB>values", each list joined by '^'.
for f in h2c-prior:28471 grpc:28473; do
	name=${f%%:*} port=${f##*:}
	run "$name" && tshark -r "$name.pcap" -d "tcp.port==$port,http2" -Y http2.header -T fields \
		-E separator=/t -E aggregator='^' -e http2.header.name -e http2.header.value >"$name.tshark.tsv" 2>/dev/null
done
true
