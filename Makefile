# spore — build, demo, test, bench, lint.
GO       ?= go
BIN      := bin
PLUGINS  := $(notdir $(wildcard plugins/*))
GOFLAGS  ?=

.PHONY: all build demo test test-short bench lint fmt clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/spore ./cmd/host
	@for p in $(PLUGINS); do \
		if [ -d plugins/$$p/cmd/spore-transport-$$p ]; then \
			echo "$(GO) build -o $(BIN)/ ./plugins/$$p/cmd/spore-transport-$$p"; \
			$(GO) build -o $(BIN)/ ./plugins/$$p/cmd/spore-transport-$$p || exit 1; \
		fi; \
	done

# The main job on the local transport: facts and timings, a command whose
# status passes through, remote Python, a file round trip.
demo: build
	@echo '$$ bin/spore plugins'; $(BIN)/spore plugins
	@echo; echo '$$ bin/spore ping local://'; $(BIN)/spore ping local://
	@echo; echo '$$ bin/spore run local:// -- uname -a'; $(BIN)/spore run local:// -- uname -a
	@echo; echo '$$ bin/spore run local:// --shell "echo from $$(hostname); exit 3"'; \
		$(BIN)/spore run local:// --shell 'echo from $$(hostname); exit 3'; echo "exit status $$?"
	@echo; echo '$$ bin/spore py local:// -c "import sys; result = sys.version_info[:3]"'; \
		$(BIN)/spore py local:// -c 'import sys; result = sys.version_info[:3]'
	@echo; echo '$$ bin/spore put local:// Makefile /tmp/spore-demo.txt && bin/spore get local:// /tmp/spore-demo.txt /tmp/spore-demo.back'; \
		$(BIN)/spore put local:// Makefile /tmp/spore-demo.txt && $(BIN)/spore get local:// /tmp/spore-demo.txt /tmp/spore-demo.back && \
		cmp Makefile /tmp/spore-demo.back && echo "round trip ok: $$(wc -c < /tmp/spore-demo.back) bytes"
	@echo; echo '$$ bin/spore sizes'; $(BIN)/spore sizes

# Unit, integration and end-to-end tests. Services (sshd, sudo, dockerd)
# are started by the tests themselves; outside CI a missing one skips with a
# reason, under CI=true it fails.
test: build
	$(GO) vet ./...
	$(GO) test $(GOFLAGS) -count=1 -timeout 20m ./...

test-short:
	$(GO) test -short -count=1 ./...

# Benchmarks: Go benchmarks (ratios against floors measured in the same run).
bench: build
	$(GO) test -run '^$$' -bench . -benchtime 2s -count 1 -timeout 30m ./bench/ | tee bench.out

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	@test -x $$($(GO) env GOPATH)/bin/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	$$($(GO) env GOPATH)/bin/staticcheck ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN) bench.out
