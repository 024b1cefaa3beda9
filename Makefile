# The two commands of the Quick start: `make demo` (the main job) and `make test` (every test).
# Both do their own set-up (scripts/install-deps.sh is idempotent and fast when done).
.PHONY: deps build test demo bench fuzz models notebook clean
deps:
	scripts/install-deps.sh
build: deps
	scripts/build.sh
test: build
	scripts/test.sh
demo: build
	scripts/demo.sh
bench: build
	scripts/bench.sh
fuzz: deps
	scripts/fuzz.sh
models: deps
	scripts/train-models.sh
notebook: build
	scripts/run-notebook.sh
clean:
	rm -rf build build-* examples/cpp/build
