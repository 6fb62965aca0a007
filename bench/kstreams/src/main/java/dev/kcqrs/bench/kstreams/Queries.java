package dev.kcqrs.bench.kstreams;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Executors;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.common.utils.Utils;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.errors.InvalidStateStoreException;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;

/**
 * Interactive queries over HTTP, as a Kafka Streams application serves them (Kafka Streams has no
 * HTTP layer of its own; this is the usual JDK-server one), for the failover benchmark
 * (bench/WORKLOADS.md §5). Only this instance's stores are read; the benchmark asks the survivor.
 *
 * <pre>
 *   GET /stores/{store}/keys/{key}[?stale=true]  200 value | 404 | 503 not queryable here now
 *   GET /stores/{store}/count                    200 {"count":N} over the active stores here
 * </pre>
 *
 * A lookup reads the key's partition from the active task first; with {@code stale=true} it falls
 * back to a standby (or restoring) copy ({@code StoreQueryParameters#enableStaleStores}, KIP-535)
 * and says so with {@code Kcqrs-Standby: true}, the header kcqrs uses for the same answer.
 */
final class Queries {
  private final KafkaStreams streams;
  private final int partitions;
  private final boolean bytes;
  private final HttpServer server;

  /** {@code bytes}: the stores hold Bytes keys and byte[] values (orders-expert), not Strings. */
  Queries(KafkaStreams streams, int port, int partitions, boolean bytes) throws IOException {
    this.streams = streams;
    this.partitions = partitions;
    this.bytes = bytes;
    server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 64);
    server.createContext("/stores/", this::handle);
    // A few threads: the benchmark's prober asks one key at a time, the count walks a store.
    server.setExecutor(Executors.newFixedThreadPool(4));
  }

  void start() {
    server.start();
  }

  void stop() {
    server.stop(0);
  }

  private void handle(HttpExchange x) throws IOException {
    try (x) {
      String[] parts = x.getRequestURI().getRawPath().split("/");
      // ["", "stores", store, "keys", key] or ["", "stores", store, "count"]
      if (!x.getRequestMethod().equals("GET") || parts.length < 4) {
        reply(x, 404, "{\"error\":\"no such route\"}", false);
        return;
      }
      String store = decode(parts[2]);
      if (parts.length == 4 && parts[3].equals("count")) {
        count(x, store);
      } else if (parts.length == 5 && parts[3].equals("keys")) {
        String query = x.getRequestURI().getRawQuery();
        lookup(x, store, decode(parts[4]), query != null && query.contains("stale=true"));
      } else {
        reply(x, 404, "{\"error\":\"no such route\"}", false);
      }
    }
  }

  private void lookup(HttpExchange x, String store, String key, boolean stale) throws IOException {
    // The default partitioner's choice (murmur2), as the producers of the input used it; the
    // stores are co-partitioned with the input. queryMetadataForKey gives the same number but
    // only while the instance knows an assignment, which is what is being measured.
    byte[] raw = key.getBytes(StandardCharsets.UTF_8);
    int partition = Utils.toPositive(Utils.murmur2(raw)) % partitions;
    String value;
    boolean fromStandby = false;
    try {
      value = get(store, partition, false, key, raw);
    } catch (InvalidStateStoreException notActiveHere) {
      if (!stale) {
        reply(x, 503, "{\"error\":\"partition " + partition + " not active here\"}", false);
        return;
      }
      try {
        value = get(store, partition, true, key, raw);
        fromStandby = true;
      } catch (InvalidStateStoreException noCopyHere) {
        reply(x, 503, "{\"error\":\"partition " + partition + " not here\"}", false);
        return;
      }
    }
    if (value == null) {
      reply(x, 404, "{\"error\":\"not found\"}", fromStandby);
    } else {
      reply(x, 200, value, fromStandby);
    }
  }

  private void count(HttpExchange x, String store) throws IOException {
    long n = 0;
    try {
      ReadOnlyKeyValueStore<Object, Object> s = streams.store(
          StoreQueryParameters.fromNameAndType(store, QueryableStoreTypes.keyValueStore()));
      try (KeyValueIterator<Object, Object> it = s.all()) {
        while (it.hasNext()) {
          it.next();
          n++;
        }
      }
    } catch (InvalidStateStoreException e) {
      reply(x, 503, "{\"error\":\"" + e.getMessage().replace('"', '\'') + "\"}", false);
      return;
    }
    reply(x, 200, "{\"count\":" + n + "}", false);
  }

  private String get(String store, int partition, boolean stale, String key, byte[] raw) {
    if (!bytes) return this.<String, String>storeOf(store, partition, stale).get(key);
    byte[] v = this.<Bytes, byte[]>storeOf(store, partition, stale).get(Bytes.wrap(raw));
    return v == null ? null : new String(v, StandardCharsets.UTF_8);
  }

  private <K, V> ReadOnlyKeyValueStore<K, V> storeOf(String store, int partition, boolean stale) {
    StoreQueryParameters<ReadOnlyKeyValueStore<K, V>> p = StoreQueryParameters
        .fromNameAndType(store, QueryableStoreTypes.<K, V>keyValueStore())
        .withPartition(partition);
    return streams.store(stale ? p.enableStaleStores() : p);
  }

  private static String decode(String s) {
    return URLDecoder.decode(s, StandardCharsets.UTF_8);
  }

  private static void reply(HttpExchange x, int status, String body, boolean fromStandby)
      throws IOException {
    byte[] b = body.getBytes(StandardCharsets.UTF_8);
    x.getResponseHeaders().add("Content-Type", "application/json");
    if (fromStandby) x.getResponseHeaders().add("Kcqrs-Standby", "true");
    x.sendResponseHeaders(status, b.length);
    try (OutputStream o = x.getResponseBody()) {
      o.write(b);
    }
  }
}
