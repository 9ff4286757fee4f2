# Meerkat — see README.md.
GO ?= go

.PHONY: run test race cover bench bench-smoke fuzz vet fmt build peers-test peers-stop bench-compare

run:
	$(GO) run ./cmd/meerkat

test:
	$(GO) test ./...

# The race detector on every package, with coverage per package (CI runs this).
race:
	$(GO) test -race -cover ./...

cover:
	$(GO) test -coverprofile=coverage.out ./... && $(GO) tool cover -func=coverage.out | tail -1

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./xmlstream ./jid ./internal/...

# Every benchmark once, so that CI sees them build and pass. -short asks
# benchmarks to shrink what they set up (large archives, many
# connections): every benchmark that takes more than a second or so to
# prepare must honour testing.Short(). The archive size is also set
# explicitly for BenchmarkArchiveQueries.
bench-smoke:
	MEERKAT_BENCH_ARCHIVE=20000 $(GO) test -short -run '^$$' -bench . -benchtime 1x ./...

# Fuzz each target for FUZZTIME (default 60s); crashers land in testdata/fuzz.
FUZZTIME ?= 60s
fuzz:
	$(GO) test ./xmlstream -run '^$$' -fuzz '^FuzzStream$$' -fuzztime $(FUZZTIME)
	$(GO) test ./xmlstream -run '^$$' -fuzz '^FuzzStanza$$' -fuzztime $(FUZZTIME)
	$(GO) test ./jid -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/sasl -run '^$$' -fuzz '^FuzzStep$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/c2s -run '^$$' -fuzz '^FuzzParseBOSHBody$$' -fuzztime $(FUZZTIME)
	$(GO) test ./dataform -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./rsm -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/modules/mam -run '^$$' -fuzz '^FuzzQuery$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/modules/inbox -run '^$$' -fuzz '^FuzzRequests$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/modules/muclight -run '^$$' -fuzz '^FuzzAffiliations$$' -fuzztime $(FUZZTIME)

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }

build:
	$(GO) build -o bin/meerkat ./cmd/meerkat
	$(GO) build -o bin/meerkat-load ./cmd/meerkat-load

# Meerkat, ejabberd and Prosody side by side with the load generator (as
# root: installs the peers from Debian when absent). Takes a few minutes;
# results in $${BENCH_OUT:-/tmp/meerkat-bench}. See docs/load.md.
bench-compare:
	bench/compare

# The stories against Meerkat, Prosody and ejabberd (scripts/peers/README.md).
# The peers are installed with apt-get when absent, which needs root; a peer
# that cannot be installed is skipped with a message. They stay running.
peers-test:
	GO=$(GO) scripts/peers/test.sh

peers-stop:
	scripts/peers/prosody.sh stop
	scripts/peers/ejabberd.sh stop
