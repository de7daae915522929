# make test: install what the tests need (only what is missing), then vet and run every test with -race.
SHELL := /bin/bash
GO ?= go

# Debian packages the tests use: redis-server and redis-tools (cursor/redis, multi-replica tests, a
# 3-master Redis Cluster created with redis-cli), libopencore-amrnb
# (media/amrnb, cgo via pkg-config), chromium (the sandbox browser test), ffmpeg (media's optional
# decoder path), CJK and emoji fonts (so the sandbox screenshots render Chinese text).
APT_PACKAGES := redis-server redis-tools libopencore-amrnb-dev pkg-config chromium ffmpeg fonts-wqy-microhei fonts-noto-color-emoji

.PHONY: test deps vet race fuzz bench soak sandbox

test: deps vet race

deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "need root to apt-get install$$missing" >&2; exit 1; fi; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@$(GO) mod download

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

race:
	$(GO) test -race -timeout 12m ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

# The randomized fault soak for 10 minutes (make test runs it for 25 s). SOAK_SEED replays a schedule.
soak: deps
	WXKF_SOAK_SEED=$(SOAK_SEED) $(GO) test -race -run '^TestFaultSoak$$' -timeout 30m -v ./kf -args -soak 10m

sandbox:
	$(GO) run ./examples/sandbox
