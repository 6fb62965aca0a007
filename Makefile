# The two commands a newcomer needs (see README.md):
#   make demo   installs what is missing, builds, runs the orders example
#   make test   installs what is missing, builds with sanitizers, runs every
#               test against a real Apache Kafka broker it starts and stops
# Both call scripts/setup first; it only installs what is missing.

JOBS ?= 2
GENERATOR ?= Ninja
BUILD_DIR ?= build
TEST_BUILD_DIR ?= build/asan
DEMO_TOPOLOGY ?= examples/orders/topology.yaml
CTEST_ARGS ?=
FUZZ_BUILD_DIR ?= build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= json_codec expression topology http lua_bridge
TSAN_BUILD_DIR ?= build/tsan

.PHONY: all setup build test test-compat test-tsan fuzz demo bench bench-shop bench-tools clean kafka-start kafka-stop format clients package

all: build

setup:
	@scripts/setup

# Optimised build: build/bin/kcqrs.
build: setup
	cmake -S . -B $(BUILD_DIR) -G $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKCQRS_BUILD_TESTS=OFF
	cmake --build $(BUILD_DIR) -j$(JOBS)

# AddressSanitizer + UndefinedBehaviorSanitizer, warnings as errors. CTest's
# "kafka" fixture starts the real broker (scripts/kafka) before the
# integration tests and stops it after them, pass or fail.
test: setup
	cmake -S . -B $(TEST_BUILD_DIR) -G $(GENERATOR) -DCMAKE_BUILD_TYPE=Debug \
	  -DKCQRS_SANITIZE=ON -DKCQRS_WERROR=ON -DKCQRS_BUILD_BENCH=OFF
	cmake --build $(TEST_BUILD_DIR) -j$(JOBS)
	scripts/kafka fetch
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(TEST_BUILD_DIR) --output-on-failure --timeout 600 $(CTEST_ARGS)

# The integration tests on the older supported broker (README: "Kafka
# versions"). `make test` runs them on the default, newest Kafka 4.x;
# KAFKA_VERSION=3.9.1 make test runs every test on 3.9.1.
COMPAT_KAFKA_VERSION ?= 3.9.1
test-compat: setup
	cmake -S . -B $(TEST_BUILD_DIR) -G $(GENERATOR) -DCMAKE_BUILD_TYPE=Debug \
	  -DKCQRS_SANITIZE=ON -DKCQRS_WERROR=ON -DKCQRS_BUILD_BENCH=OFF
	cmake --build $(TEST_BUILD_DIR) -j$(JOBS)
	KAFKA_VERSION=$(COMPAT_KAFKA_VERSION) scripts/kafka fetch
	KAFKA_VERSION=$(COMPAT_KAFKA_VERSION) \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(TEST_BUILD_DIR) --output-on-failure --timeout 600 -L integration $(CTEST_ARGS)

# libFuzzer (fuzz/README.md): builds the fuzz targets with clang, ASan and
# UBSan, and runs each for FUZZ_SECONDS on its corpus in fuzz/corpus/. New
# inputs and crashes land in $(FUZZ_BUILD_DIR); FUZZ_MERGE=1 merges new
# inputs into the corpus. `make test` replays the corpus with GCC.
fuzz: setup
	cmake -S . -B $(FUZZ_BUILD_DIR) -G $(GENERATOR) -DCMAKE_BUILD_TYPE=Debug \
	  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DKCQRS_FUZZ=ON \
	  -DKCQRS_BUILD_TESTS=OFF -DKCQRS_BUILD_BENCH=OFF
	cmake --build $(FUZZ_BUILD_DIR) -j$(JOBS) --target $(FUZZ_TARGETS:%=%_fuzzer)
	fuzz/run $(FUZZ_BUILD_DIR)/bin $(FUZZ_BUILD_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# ThreadSanitizer: every test, the broker tests included (through the same
# CTest fixture as `make test`). CI runs it after `make test`.
# ignore_noninstrumented_modules=1 keeps TSan from recording the copies that
# uninstrumented libraries (RocksDB, librdkafka) make into their own memory,
# whose atomics it cannot see; tests/tsan.supp says why, and why it lists no
# suppression.
test-tsan: setup
	cmake -S . -B $(TSAN_BUILD_DIR) -G $(GENERATOR) -DCMAKE_BUILD_TYPE=Debug \
	  -DKCQRS_TSAN=ON -DKCQRS_WERROR=ON -DKCQRS_BUILD_BENCH=OFF
	cmake --build $(TSAN_BUILD_DIR) -j$(JOBS)
	scripts/kafka fetch
	TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp ignore_noninstrumented_modules=1 second_deadlock_stack=1 history_size=7" \
	  ctest --test-dir $(TSAN_BUILD_DIR) --output-on-failure --timeout 900 \
	  $(CTEST_ARGS)

# A Debian package of the binary and the example topologies (CPack;
# cmake/package.cmake): $(BUILD_DIR)/kcqrs_<version>_<arch>.deb, for
# `apt install ./kcqrs_*.deb` on the same Debian release.
package: build
	cd $(BUILD_DIR) && cpack -G DEB

demo: build
	scripts/demo $(BUILD_DIR)/bin/kcqrs $(DEMO_TOPOLOGY)

# Benchmarks (docs/benchmarks.md). Run on an otherwise idle machine: they
# measure CPU and wall time. bench-tools builds what they run: kcqrs, the
# micro benchmarks, the load generator and checker (kbench), the raw
# librdkafka pipe, and the Kafka Streams peer (Maven, bench/kstreams).
bench-tools: build
	mvn -q -B -f bench/kstreams/pom.xml package -DskipTests

BENCH_ARGS ?=
bench: bench-tools
	$(BUILD_DIR)/bin/micro_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
	$(BUILD_DIR)/bin/expression_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
	$(BUILD_DIR)/bin/doc_model_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
	$(BUILD_DIR)/bin/doc_model_bench_baseline --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
	bench/compare/run.py $(BENCH_ARGS)
	bench/http/run.sh
	bench/orders/repartition_bytes.sh
	$(MAKE) bench-shop

# Issue 13's row: checkouts per second and per CPU-second, 5 runs of
# 50,000 orders, each on a fresh broker, then medians with min-max.
SHOP_RESULTS ?= /tmp/kcqrs-bench-shop/results.jsonl
bench-shop: build
	rm -f $(SHOP_RESULTS)
	for i in 1 2 3 4 5; do bench/shop/run.py --orders 50000 --seed $$i \
	  --work /tmp/kcqrs-bench-shop/run-$$i --out $(SHOP_RESULTS) || exit 1; done
	bench/shop/summary.py $(SHOP_RESULTS)

# The orders example's clients in the seed article's languages (Java, Kotlin,
# Scala, Clojure; examples/clients/README.md): builds them with Maven and runs
# each against `kcqrs run examples/orders/topology.yaml` on a broker of its
# own (scripts/kafka), asserting the outcomes; the broker and engine are
# stopped after, pass or fail. CLIENTS="java scala" runs some. It builds
# the kcqrs binary only, configured as `make build` configures it.
CLIENTS ?= java kotlin scala clojure
clients: setup
	cmake -S . -B $(BUILD_DIR) -G $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKCQRS_BUILD_TESTS=OFF
	cmake --build $(BUILD_DIR) -j$(JOBS) --target kcqrs
	examples/clients/run-all --kcqrs $(BUILD_DIR)/bin/kcqrs --langs "$(CLIENTS)"

kafka-start: setup
	scripts/kafka start

kafka-stop:
	scripts/kafka stop

format:
	find include config topology state engine app tests bench -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR)
