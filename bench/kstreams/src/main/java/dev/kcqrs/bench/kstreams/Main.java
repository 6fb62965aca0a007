package dev.kcqrs.bench.kstreams;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.ThreadMetadata;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;
import org.apache.kafka.streams.processor.StateRestoreListener;

/**
 * The Kafka Streams peer of the kcqrs benchmarks (bench/WORKLOADS.md).
 *
 * <pre>
 * java -jar kstreams-bench.jar orders    --bootstrap H:P --app-id ID --run PREFIX --guarantee eos|alos
 *                                         --state-dir DIR [--input bench.orders.commands] [--threads 1]
 *                                         [--instance-id APP-ID|none] [--session-timeout-ms 10000]
 *                                         [--standby-replicas 0] [--http-port P]
 * java -jar kstreams-bench.jar orders-expert  (the same options as orders; see OrdersExpert)
 * java -jar kstreams-bench.jar stateless --bootstrap H:P --app-id ID --run PREFIX --guarantee eos|alos
 *                                         --state-dir DIR [--input bench.stateless.in] [--threads 1]
 *                                         [--instance-id APP-ID|none] [--session-timeout-ms 10000]
 * java -jar kstreams-bench.jar create-topics --bootstrap H:P [--partitions 4] TOPIC...
 * </pre>
 *
 * stdout carries only machine-readable lines: {@code KSTART <ms>}, {@code KSTATE <STATE> <ms>} per
 * state transition, {@code KRESTORED <records> <ms>} when no restoration is in progress any more
 * (the count is cumulative since start), {@code KTASKS active=<ids> standby=<ids>} on each
 * transition to RUNNING, {@code KSTOP <skipped records> <ms>} at exit.
 */
public final class Main {
  static final int PARTITIONS = 4;

  private Main() {}

  public static void main(String[] argv) throws Exception {
    out("KSTART " + System.currentTimeMillis());
    if (argv.length == 0 || argv[0].equals("-h") || argv[0].equals("--help")) {
      usage();
      System.exit(argv.length == 0 ? 2 : 0);
    }
    String cmd = argv[0];
    List<String> positional = new ArrayList<>();
    try {
      command(cmd, parse(argv, positional), positional);
    } catch (IllegalArgumentException e) {
      System.err.println("kstreams-bench: " + e.getMessage());
      usage();
      System.exit(2);
    }
  }

  private static void command(String cmd, Map<String, String> opts, List<String> positional)
      throws Exception {
    switch (cmd) {
      case "orders", "orders-expert", "stateless" -> System.exit(run(cmd, opts));
      case "create-topics" -> {
        int partitions = Integer.parseInt(opts.getOrDefault("partitions", "" + PARTITIONS));
        try (Admin admin = admin(required(opts, "bootstrap"))) {
          ensureTopics(admin, positional, partitions);
        }
      }
      default -> {
        System.err.println("unknown command '" + cmd + "'");
        usage();
        System.exit(2);
      }
    }
  }

  private static int run(String cmd, Map<String, String> opts) throws Exception {
    String bootstrap = required(opts, "bootstrap");
    String appId = required(opts, "app-id");
    String run = required(opts, "run");
    String guarantee = required(opts, "guarantee");
    String stateDir = required(opts, "state-dir");
    int threads = Integer.parseInt(opts.getOrDefault("threads", "1"));
    // Static group membership, as kcqrs does (docs/architecture.md): a restart after kill -9
    // takes its partitions back at once instead of waiting for the dead member's session to
    // expire. Kafka Streams appends "-<thread index>" per stream thread. "none": dynamic.
    String instanceId = opts.getOrDefault("instance-id", appId);
    String sessionTimeoutMs = opts.getOrDefault("session-timeout-ms", "10000");
    int standbys = Integer.parseInt(opts.getOrDefault("standby-replicas", "0"));
    int httpPort = Integer.parseInt(opts.getOrDefault("http-port", "0"));
    if (!guarantee.equals("eos") && !guarantee.equals("alos")) {
      throw new IllegalArgumentException("--guarantee must be eos or alos, got " + guarantee);
    }

    String input;
    List<String> outputs;
    Topology topology;
    boolean expert = cmd.equals("orders-expert");
    if (cmd.equals("orders") || expert) {
      input = opts.getOrDefault("input", "bench.orders.commands");
      String events = run + ".orders.events";
      String rejections = run + ".orders.rejections";
      outputs = List.of(events, rejections);
      topology = expert
          ? OrdersExpert.build(input, events, rejections)
          : Orders.build(input, events, rejections);
    } else {
      input = opts.getOrDefault("input", "bench.stateless.in");
      String output = run + ".stateless.out";
      outputs = List.of(output);
      topology = Stateless.build(input, output);
    }

    try (Admin admin = admin(bootstrap)) {
      try {
        admin.describeTopics(List.of(input)).allTopicNames().get(30, TimeUnit.SECONDS);
      } catch (ExecutionException e) {
        if (e.getCause() instanceof UnknownTopicOrPartitionException) {
          System.err.println("the input topic " + input + " does not exist");
          return 2;
        }
        throw e;
      }
      ensureTopics(admin, outputs, PARTITIONS);
    }

    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG,
        guarantee.equals("eos") ? StreamsConfig.EXACTLY_ONCE_V2 : StreamsConfig.AT_LEAST_ONCE);
    // Explicitly 100 ms for both guarantees (the at_least_once default would be 30 s).
    p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
    p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, threads);
    p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
    p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
    p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    // The default (10 MB), stated explicitly. It only applies to stores with caching enabled;
    // the Processor API stores here keep the builder's default (caching off, logging on).
    p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 10L * 1024 * 1024);
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
    // Kafka Streams 4.x warns at every start unless this is set; it will be the 5.0 behaviour.
    // There is no global store here, so it changes nothing but the warning.
    p.put(StreamsConfig.PROCESSING_EXCEPTION_HANDLER_GLOBAL_ENABLED_CONFIG, true);
    if (!instanceId.equals("none")) {
      p.put(StreamsConfig.mainConsumerPrefix(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG), instanceId);
    }
    // kcqrs's value (the consumer default is 45 s).
    p.put(StreamsConfig.mainConsumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG),
        Integer.parseInt(sessionTimeoutMs));
    // Warm copies on other instances (bench/WORKLOADS.md §5), as kcqrs's standby_replicas.
    p.put(StreamsConfig.NUM_STANDBY_REPLICAS_CONFIG, standbys);
    if (expert) {
      // 64 KB producer batches (the producer default is 16 KB) and linger.ms 10, near kcqrs's
      // batching (librdkafka: linger.ms 5, batches up to 1 MB; engine/runtime/client_configs.cc),
      // for the events, rejections, repartition and changelog topics alike. Kafka Streams' own default linger.ms is 100 ms; every commit (100 ms here)
      // flushes the producer anyway, so 10 ms sends sooner without making batches much smaller.
      p.put(StreamsConfig.producerPrefix(ProducerConfig.BATCH_SIZE_CONFIG), 65536);
      p.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG), 10);
    }
    if (httpPort > 0) {
      // Where this instance's queries are served, so that StreamsMetadata names it.
      p.put(StreamsConfig.APPLICATION_SERVER_CONFIG, "127.0.0.1:" + httpPort);
    }

    KafkaStreams streams = new KafkaStreams(topology, p);
    CountDownLatch stopped = new CountDownLatch(1);
    streams.setStateListener((next, prev) -> {
      out("KSTATE " + next + " " + System.currentTimeMillis());
      if (next == KafkaStreams.State.RUNNING) out("KTASKS " + tasks(streams));
      if (next == KafkaStreams.State.NOT_RUNNING || next == KafkaStreams.State.ERROR) {
        stopped.countDown();
      }
    });
    streams.setGlobalStateRestoreListener(new Restores());
    streams.setUncaughtExceptionHandler(e -> {
      System.err.println("KERROR stream thread failed: " + e);
      e.printStackTrace();
      return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
    });
    Queries queries = httpPort > 0 ? new Queries(streams, httpPort, PARTITIONS, expert) : null;
    Thread hook = new Thread(() -> {
      if (queries != null) queries.stop();
      streams.close(Duration.ofSeconds(30));
      out("KSTOP " + Json.skipped() + " " + System.currentTimeMillis());
    }, "kstreams-bench-shutdown");
    Runtime.getRuntime().addShutdownHook(hook);

    System.err.println("kstreams-bench " + cmd + ": app-id " + appId + ", input " + input
        + ", outputs " + outputs + ", " + guarantee + ", " + threads + " thread(s), group.instance.id "
        + instanceId + ", session.timeout.ms " + sessionTimeoutMs + ", " + standbys
        + " standby replica(s)" + (httpPort > 0 ? ", queries on 127.0.0.1:" + httpPort : "")
        + "\n"
        + topology.describe());
    streams.start();
    if (queries != null) queries.start();
    stopped.await();
    // Reached on ERROR (a failed stream thread) or a close by the shutdown hook (SIGTERM).
    if (streams.state() == KafkaStreams.State.ERROR) {
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException shuttingDown) {
        return 1;
      }
      streams.close(Duration.ofSeconds(30));
      out("KSTOP " + Json.skipped() + " " + System.currentTimeMillis());
      return 1;
    }
    // A SIGTERM: the hook is closing; wait for it (the JVM exits when it is done).
    hook.join();
    return 0;
  }

  /** "active=0_0,1_0 standby=0_1,1_1": the tasks this instance's threads hold now. */
  private static String tasks(KafkaStreams streams) {
    List<String> active = new ArrayList<>();
    List<String> standby = new ArrayList<>();
    for (ThreadMetadata t : streams.metadataForLocalThreads()) {
      t.activeTasks().forEach(m -> active.add(m.taskId().toString()));
      t.standbyTasks().forEach(m -> standby.add(m.taskId().toString()));
    }
    Collections.sort(active);
    Collections.sort(standby);
    return "active=" + String.join(",", active) + " standby=" + String.join(",", standby);
  }

  /** Prints KRESTORED whenever the last running restoration ends. */
  private static final class Restores implements StateRestoreListener {
    private final AtomicInteger active = new AtomicInteger();
    private final AtomicLong restored = new AtomicLong();

    @Override
    public void onRestoreStart(TopicPartition tp, String store, long start, long end) {
      active.incrementAndGet();
    }

    @Override
    public void onBatchRestored(TopicPartition tp, String store, long batchEnd, long n) {}

    @Override
    public void onRestoreEnd(TopicPartition tp, String store, long total) {
      done(total);
    }

    @Override
    public void onRestoreSuspended(TopicPartition tp, String store, long total) {
      done(total);
    }

    private void done(long total) {
      long sum = restored.addAndGet(total);
      if (active.decrementAndGet() == 0) out("KRESTORED " + sum + " " + System.currentTimeMillis());
    }
  }

  static Admin admin(String bootstrap) {
    Properties p = new Properties();
    p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    return Admin.create(p);
  }

  /** Creates the missing topics (partitions, replication 1); warns about other partition counts. */
  static void ensureTopics(Admin admin, List<String> topics, int partitions) throws Exception {
    Set<String> existing = admin.listTopics().names().get(30, TimeUnit.SECONDS);
    List<NewTopic> missing = new ArrayList<>();
    for (String t : topics) {
      if (!existing.contains(t)) missing.add(new NewTopic(t, partitions, (short) 1));
    }
    for (var e : admin.createTopics(missing).values().entrySet()) {
      try {
        e.getValue().get(30, TimeUnit.SECONDS);
        System.err.println("created topic " + e.getKey() + " (" + partitions + " partitions)");
      } catch (ExecutionException x) {
        if (!(x.getCause() instanceof TopicExistsException)) throw x;
      }
    }
    Map<String, TopicDescription> d =
        admin.describeTopics(topics).allTopicNames().get(30, TimeUnit.SECONDS);
    for (TopicDescription t : d.values()) {
      if (t.partitions().size() != partitions) {
        System.err.println("warning: topic " + t.name() + " has " + t.partitions().size()
            + " partitions, not " + partitions);
      }
    }
  }

  private static Map<String, String> parse(String[] argv, List<String> positional) {
    Map<String, String> opts = new HashMap<>();
    for (int i = 1; i < argv.length; i++) {
      String a = argv[i];
      if (a.startsWith("--")) {
        String name = a.substring(2);
        String value;
        int eq = name.indexOf('=');
        if (eq >= 0) {
          value = name.substring(eq + 1);
          name = name.substring(0, eq);
        } else if (i + 1 < argv.length) {
          value = argv[++i];
        } else {
          throw new IllegalArgumentException("option --" + name + " needs a value");
        }
        opts.put(name, value);
      } else {
        positional.add(a);
      }
    }
    return opts;
  }

  private static String required(Map<String, String> opts, String name) {
    String v = opts.get(name);
    if (v == null || v.isEmpty()) throw new IllegalArgumentException("--" + name + " is required");
    return v;
  }

  private static void usage() {
    System.err.println("""
        usage:
          kstreams-bench orders    --bootstrap HOST:PORT --app-id ID --run PREFIX --guarantee eos|alos
                                   --state-dir DIR [--input bench.orders.commands] [--threads 1]
                                   [--instance-id APP-ID|none] [--session-timeout-ms 10000]
                                   [--standby-replicas 0] [--http-port P]
          kstreams-bench orders-expert  (the same options as orders: the expert's Processor API peer)
          kstreams-bench stateless --bootstrap HOST:PORT --app-id ID --run PREFIX --guarantee eos|alos
                                   --state-dir DIR [--input bench.stateless.in] [--threads 1]
                                   [--instance-id APP-ID|none] [--session-timeout-ms 10000]
          kstreams-bench create-topics --bootstrap HOST:PORT [--partitions 4] TOPIC...
        stdout: KSTART <ms>, KSTATE <STATE> <ms>, KTASKS active=.. standby=.., KRESTORED <records> <ms>,
                KSTOP <skipped> <ms>""");
  }

  static synchronized void out(String line) {
    System.out.println(line);
    System.out.flush();
  }
}
