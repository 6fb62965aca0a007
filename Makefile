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

.PHONY: all setup build test demo bench bench-tools clean kafka-start kafka-stop format

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
	bench/compare/run.py $(BENCH_ARGS)
	bench/http/run.sh

kafka-start: setup
	scripts/kafka start

kafka-stop:
	scripts/kafka stop

format:
	find include config topology state engine app tests bench -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR)
