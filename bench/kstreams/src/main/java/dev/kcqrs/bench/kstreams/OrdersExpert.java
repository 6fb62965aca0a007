package dev.kcqrs.bench.kstreams;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Named;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;

/**
 * Workload 2 (bench/WORKLOADS.md, rules normative in bench/orders/topology.yaml) as a Kafka Streams
 * committer would write it for throughput: the same rules, topics, outputs and store contents
 * as {@link Orders} (the checker cannot tell them apart), with less work per record.
 *
 * <pre>
 *   input ─► order-commands [order-aggregates: binary] ─┬─► events-sink     (&lt;run&gt;.orders.events)
 *                                                      └─► rejections-sink (&lt;run&gt;.orders.rejections)
 *   &lt;run&gt;.orders.events ─► orders-projection [orders] ─► repartition by product, 9-byte values
 *       (&lt;app-id&gt;-product_totals-repartition, 4 partitions)
 *       ─► product-totals-projection [product_totals, record cache on]
 * </pre>
 *
 * <ul>
 *   <li>Bytes keys and byte[] values throughout: no String serdes, no JSON tree. Each record is read
 *       once with Jackson's streaming parser and the output is written byte by byte ({@link Out}).
 *   <li>The aggregate store value is binary ({@link Aggregate}): status, version, quantity,
 *       product and the same last {@value Orders#DEDUP_WINDOW} command ids the naive peer keeps.
 *   <li>The events are read once for both projections: the orders projection forwards to the
 *       repartition only what product_totals needs, a type tag and one number (9 bytes).
 *   <li>The record cache only on product_totals (1,000 keys, updated many times per commit).
 * </ul>
 *
 * The {@code orders} and {@code product_totals} store values stay the JSON documents of the
 * contract: the checker reads them from the changelogs.
 */
final class OrdersExpert {
  static final String AGGREGATES = Orders.AGGREGATES;
  static final String ORDERS = Orders.ORDERS;
  static final String PRODUCT_TOTALS = Orders.PRODUCT_TOTALS;
  static final int DEDUP_WINDOW = Orders.DEDUP_WINDOW;

  private static final String EVENTS_SINK = "events-sink";
  private static final String REJECTIONS_SINK = "rejections-sink";
  // Jackson's factory is thread-safe; parsers come from it per record (cheap: they share its
  // symbol table and recycled buffers).
  private static final JsonFactory JSON = new JsonFactory();

  // Tags of the repartition value: [tag][8-byte big-endian number].
  static final byte CREATED = 1; // orders += 1, quantity += number
  static final byte ADJUSTED = 2; // quantity += number (the delta)
  static final byte CANCELLED = 3; // orders -= 1, quantity -= number

  private OrdersExpert() {}

  static Topology build(String input, String eventsTopic, String rejectionsTopic) {
    Serde<Bytes> k = Serdes.Bytes();
    Serde<byte[]> v = Serdes.ByteArray();
    StreamsBuilder b = new StreamsBuilder();
    // RocksDB, changelogged (the default). The orders store is written once per event for a
    // different key almost every time within a commit interval: a cache would only add copies.
    b.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(ORDERS), k, v));
    // 1,000 products, each updated many times per 100 ms commit: the cache folds those updates
    // into one RocksDB write and one changelog record per product and commit.
    b.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(PRODUCT_TOTALS), k, v)
        .withCachingEnabled());

    b.stream(eventsTopic, Consumed.with(k, v).withName("events-source"))
        .process(EventsProcessor::new, Named.as("orders-projection"), ORDERS)
        .repartition(Repartitioned.<Bytes, byte[]>as(PRODUCT_TOTALS)
            .withKeySerde(k).withValueSerde(v).withNumberOfPartitions(4))
        .process(ProductTotals::new, Named.as("product-totals-projection"), PRODUCT_TOTALS);

    Topology t = b.build();
    t.addSource("commands-source", k.deserializer(), v.deserializer(), input);
    t.addProcessor("order-commands", CommandProcessor::new, "commands-source");
    // Every command reads and rewrites its own aggregate, and 100,000 aggregates spread over a
    // commit interval: a cache would not fold writes, so none.
    t.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(AGGREGATES), k, v),
        "order-commands");
    t.addSink(EVENTS_SINK, eventsTopic, k.serializer(), v.serializer(), "order-commands");
    t.addSink(REJECTIONS_SINK, rejectionsTopic, k.serializer(), v.serializer(), "order-commands");
    return t;
  }

  // ---- the command side -------------------------------------------------------------------

  /** Decides each command against the binary aggregate; see {@link Orders.CommandProcessor}. */
  static final class CommandProcessor implements Processor<Bytes, byte[], Bytes, byte[]> {
    private ProcessorContext<Bytes, byte[]> ctx;
    private KeyValueStore<Bytes, byte[]> store;
    private final Out out = new Out();
    private final Aggregate agg = new Aggregate();

    @Override
    public void init(ProcessorContext<Bytes, byte[]> context) {
      ctx = context;
      store = context.getStateStore(AGGREGATES);
    }

    @Override
    public void process(Record<Bytes, byte[]> r) {
      byte[] value = r.value();
      if (value == null) {
        Json.skip("the command has no value (null)", null);
        return;
      }
      Fields f = Fields.scan(value, "command");
      if (f == null) return;
      final String type = f.type;
      String orderId = f.orderId;
      final String product = f.product;
      final String commandId = f.commandId;
      final Num quantity = f.quantity;
      final Num delta = f.delta;
      if (type == null) {
        Json.skip("the command has no 'type' field", text(value));
        return;
      }
      final int kind = switch (type) {
        case "CreateOrder" -> 0;
        case "AdjustQuantity" -> 1;
        case "CancelOrder" -> 2;
        default -> -1;
      };
      if (kind < 0) {
        Json.skip("unknown command type '" + type + "' for aggregate 'order'", text(value));
        return;
      }
      Bytes key;
      if (orderId != null) {
        key = Bytes.wrap(orderId.getBytes(StandardCharsets.UTF_8));
      } else if (r.key() != null) {
        key = r.key();
        orderId = new String(key.get(), StandardCharsets.UTF_8);
      } else {
        Json.skip("the command has no orderId and the record no key", text(value));
        return;
      }
      byte[] id = key.get();
      byte[] cid = commandId == null ? EMPTY : commandId.getBytes(StandardCharsets.UTF_8);

      byte[] stored = store.get(key);
      agg.decode(stored, orderId);
      if (cid.length > 0 && agg.seen(cid)) return; // a retry: its outcome is already out

      String code = null;
      String reason = null;
      out.reset();
      switch (kind) {
        case 0 -> { // CreateOrder
          if (agg.status != Aggregate.NONE) {
            code = "already_exists";
            reason = "order " + orderId + " already exists";
          } else if (!quantity.integral || quantity.value <= 0) {
            code = "invalid";
            reason = "quantity must be greater than 0, got " + quantity.shown;
          } else {
            byte[] prod = product == null ? null : product.getBytes(StandardCharsets.UTF_8);
            out.raw(EV_CREATED).str(id).raw(F_PRODUCT).strOrNull(prod)
                .raw(F_QUANTITY).num(quantity.value).raw('}');
            agg.status = Aggregate.CREATED;
            agg.product = prod;
            agg.quantity = quantity.value;
          }
        }
        case 1 -> { // AdjustQuantity
          if (agg.status == Aggregate.NONE) {
            code = "not_found";
            reason = "order " + orderId + " does not exist";
          } else if (agg.status == Aggregate.CANCELLED) {
            code = "cancelled";
            reason = "order " + orderId + " is cancelled";
          } else if (!delta.integral) {
            code = "invalid";
            reason = "delta must be an integer, got " + delta.shown;
          } else if (agg.quantity + delta.value <= 0) {
            code = "invalid";
            reason = "quantity would drop to " + (agg.quantity + delta.value);
          } else {
            agg.quantity += delta.value;
            out.raw(EV_ADJUSTED).str(id).raw(F_PRODUCT).strOrNull(agg.product)
                .raw(F_DELTA).num(delta.value).raw(F_QUANTITY).num(agg.quantity).raw('}');
          }
        }
        default -> { // CancelOrder
          if (agg.status == Aggregate.NONE) {
            code = "not_found";
            reason = "order " + orderId + " does not exist";
          } else if (agg.status == Aggregate.CANCELLED) {
            code = "already_cancelled";
            reason = "order " + orderId + " is already cancelled";
          } else {
            out.raw(EV_CANCELLED).str(id).raw(F_PRODUCT).strOrNull(agg.product)
                .raw(F_QUANTITY).num(agg.quantity).raw('}');
            agg.status = Aggregate.CANCELLED;
          }
        }
      }
      // kcqrs's headers in its order (Orders.H_*): the constant ones are shared instances, the
      // id and command id headers wrap bytes this record already has.
      Headers headers = new RecordHeaders();
      headers.add(H_AGGREGATE_ORDER);
      headers.add(new RecordHeader(Orders.H_AGGREGATE_ID, id));
      headers.add(H_COMMAND_TYPES[kind]);
      if (cid.length > 0) headers.add(new RecordHeader(Orders.H_COMMAND_ID, cid));
      if (code != null) {
        headers.add(H_TYPE_REJECTED);
        // The naive peer's document, field for field: {commandId, commandType, aggregate,
        // aggregateId, code, reason, timestamp}.
        out.reset();
        out.raw(RJ_COMMAND_ID).str(cid).raw(RJ_COMMAND_TYPE).str(type).raw(RJ_AGGREGATE)
            .str(id).raw(RJ_CODE).str(code).raw(RJ_REASON).str(reason).raw(RJ_TIMESTAMP)
            .num(r.timestamp()).raw('}');
        ctx.forward(new Record<>(key, out.toArray(), r.timestamp(), headers), REJECTIONS_SINK);
      } else {
        agg.version++;
        headers.add(H_EVENT_TYPES[kind]);
        headers.add(versionHeader(agg.version));
        ctx.forward(new Record<>(key, out.toArray(), r.timestamp(), headers), EVENTS_SINK);
      }
      store.put(key, agg.encode(cid));
    }
  }

  private static final Header H_AGGREGATE_ORDER = new RecordHeader(Orders.H_AGGREGATE, ascii("order"));
  private static final Header H_TYPE_REJECTED = new RecordHeader(Orders.H_TYPE, ascii("Rejected"));
  // By command kind: 0 CreateOrder, 1 AdjustQuantity, 2 CancelOrder.
  private static final Header[] H_COMMAND_TYPES = {
      new RecordHeader(Orders.H_COMMAND_TYPE, ascii("CreateOrder")),
      new RecordHeader(Orders.H_COMMAND_TYPE, ascii("AdjustQuantity")),
      new RecordHeader(Orders.H_COMMAND_TYPE, ascii("CancelOrder"))};
  // The event each command kind makes.
  private static final Header[] H_EVENT_TYPES = {
      new RecordHeader(Orders.H_TYPE, ascii("OrderCreated")),
      new RecordHeader(Orders.H_TYPE, ascii("QuantityAdjusted")),
      new RecordHeader(Orders.H_TYPE, ascii("OrderCancelled"))};
  // kcqrs.version 1..N made once: an order of this workload reaches at most 10, any order of
  // any length gets a fresh header past the table.
  private static final Header[] H_VERSIONS = new Header[128];

  static {
    for (int v = 1; v < H_VERSIONS.length; v++) {
      H_VERSIONS[v] = new RecordHeader(Orders.H_VERSION, ascii(Integer.toString(v)));
    }
  }

  static Header versionHeader(long version) {
    return version > 0 && version < H_VERSIONS.length
        ? H_VERSIONS[(int) version]
        : new RecordHeader(Orders.H_VERSION, ascii(Long.toString(version)));
  }

  /**
   * The order aggregate's store value, binary:
   *
   * <pre>
   *   [status: 1 byte, 0 none | 1 CREATED | 2 CANCELLED]
   *   [version: unsigned varint] [quantity: zigzag varint]
   *   [product: varint length + 1 (0 = null), UTF-8 bytes]
   *   [number of command ids: varint] then each [varint length][UTF-8 bytes], oldest first
   * </pre>
   *
   * The same information as the naive peer's JSON document (state, version, the last
   * {@value Orders#DEDUP_WINDOW} command ids). Decoding leaves the ids in place; encoding copies
   * them as one block, less the oldest when the window is full, plus the new one.
   */
  static final class Aggregate {
    static final byte NONE = 0;
    static final byte CREATED = 1;
    static final byte CANCELLED = 2;

    byte status;
    long version;
    long quantity;
    byte[] product;
    private byte[] src;
    private int idsCount;
    private int idsStart; // offset in src of the first id
    private int firstIdEnd; // offset in src after the first id
    private final Out buf = new Out();

    void decode(byte[] v, String id) {
      src = v;
      status = NONE;
      version = 0;
      quantity = 0;
      product = null;
      idsCount = 0;
      idsStart = 0;
      firstIdEnd = 0;
      if (v == null) return;
      try {
        pos = 0;
        status = v[pos++];
        version = varint();
        long z = varint();
        quantity = (z >>> 1) ^ -(z & 1);
        int plen = (int) varint();
        if (plen > 0) {
          product = Arrays.copyOfRange(v, pos, pos + plen - 1);
          pos += plen - 1;
        }
        idsCount = (int) varint();
        idsStart = pos;
        if (idsCount > 0) {
          int len = (int) varint();
          firstIdEnd = pos + len;
        }
        if (status < NONE || status > CANCELLED || firstIdEnd > v.length) {
          throw new IndexOutOfBoundsException();
        }
      } catch (IndexOutOfBoundsException e) {
        throw new IllegalStateException("corrupt aggregate " + id + " in store " + AGGREGATES
            + " (" + v.length + " bytes, not the binary layout of OrdersExpert.Aggregate)");
      }
    }

    /** Whether the command id is among the remembered ones. */
    boolean seen(byte[] cid) {
      int p = idsStart;
      for (int i = 0; i < idsCount; i++) {
        pos = p;
        int len = (int) varint();
        int start = pos;
        if (len == cid.length && Arrays.equals(src, start, start + len, cid, 0, len)) return true;
        p = start + len;
      }
      return false;
    }

    /** The new store value: the fields, the kept ids, and {@code cid} unless empty. */
    byte[] encode(byte[] cid) {
      buf.reset();
      buf.raw(status);
      buf.varint(version);
      buf.varint((quantity << 1) ^ (quantity >> 63));
      if (product == null) {
        buf.varint(0);
      } else {
        buf.varint(product.length + 1L);
        buf.raw(product, 0, product.length);
      }
      int from = idsStart;
      int count = idsCount;
      if (cid.length > 0 && count >= DEDUP_WINDOW) {
        from = firstIdEnd; // the window is full: the oldest id goes
        count--;
      }
      buf.varint(count + (cid.length > 0 ? 1 : 0));
      if (count > 0) buf.raw(src, from, src.length - from);
      if (cid.length > 0) {
        buf.varint(cid.length);
        buf.raw(cid, 0, cid.length);
      }
      return buf.toArray();
    }

    private int pos;

    private long varint() {
      long result = 0;
      for (int shift = 0; ; shift += 7) {
        byte b = src[pos++];
        result |= (long) (b & 0x7f) << shift;
        if (b >= 0) return result;
        if (shift > 56) throw new IndexOutOfBoundsException();
      }
    }
  }

  // ---- the event side ---------------------------------------------------------------------

  /**
   * Projection {@code orders} (key = orderId, JSON {orderId, product, quantity, status}), and the
   * re-keying by product for product_totals, from one read of each event.
   */
  static final class EventsProcessor implements Processor<Bytes, byte[], Bytes, byte[]> {
    private ProcessorContext<Bytes, byte[]> ctx;
    private KeyValueStore<Bytes, byte[]> store;
    private final Out out = new Out();
    private final View view = new View();

    @Override
    public void init(ProcessorContext<Bytes, byte[]> context) {
      ctx = context;
      store = context.getStateStore(ORDERS);
    }

    @Override
    public void process(Record<Bytes, byte[]> r) {
      byte[] value = r.value();
      if (value == null) {
        Json.skip("the event has no value (null)", null);
        return;
      }
      Fields f = Fields.scan(value, "event");
      if (f == null) return;
      final String type = f.type;
      final String orderId = f.orderId;
      final String product = f.product;
      final Num quantity = f.quantity;
      final Num delta = f.delta;
      final int kind = type == null ? -1 : switch (type) {
        case "OrderCreated" -> 0;
        case "QuantityAdjusted" -> 1;
        case "OrderCancelled" -> 2;
        default -> -1;
      };

      // Projection orders.
      Bytes key = r.key();
      if (key == null && orderId != null) key = Bytes.wrap(orderId.getBytes(StandardCharsets.UTF_8));
      if (type == null || key == null) {
        Json.skip("the event has no type or no key", text(value));
      } else if (kind >= 0) {
        if (kind == 0) {
          view.clear();
          view.orderId = orderId == null ? null : orderId.getBytes(StandardCharsets.UTF_8);
          view.hasOrderId = true;
          view.product = product == null ? null : product.getBytes(StandardCharsets.UTF_8);
          view.hasProduct = true;
          view.quantity = quantity;
          view.status = STATUS_CREATED;
        } else {
          view.read(store.get(key), key);
          if (kind == 1) {
            view.quantity = quantity;
          } else {
            view.status = STATUS_CANCELLED;
          }
        }
        store.put(key, view.write(out));
      }

      // Re-keyed by product: only what product_totals needs.
      if (product == null) {
        Json.skip("the event has no product", text(value));
        return;
      }
      if (kind < 0) return; // product_totals handles none of these
      long n = kind == 1 ? delta.value : quantity.value;
      byte[] v = new byte[9];
      v[0] = kind == 0 ? CREATED : kind == 1 ? ADJUSTED : CANCELLED;
      for (int i = 8; i >= 1; i--) {
        v[i] = (byte) n;
        n >>>= 8;
      }
      // No headers: product_totals reads only the 9 bytes, so the event's six kcqrs.* headers
      // would be bytes written and read for nothing.
      ctx.forward(new Record<>(Bytes.wrap(product.getBytes(StandardCharsets.UTF_8)), v,
          r.timestamp(), NO_HEADERS));
    }
  }

  // One shared empty header set for the repartition records: the producer marks it read-only,
  // which an empty set nobody adds to does not mind.
  private static final Headers NO_HEADERS = new RecordHeaders();

  private static final byte[] STATUS_CREATED = ascii("CREATED");
  private static final byte[] STATUS_CANCELLED = ascii("CANCELLED");

  /** An orders view, read from and written as its JSON document (fields in the contract's order). */
  static final class View {
    byte[] orderId;
    boolean hasOrderId;
    byte[] product;
    boolean hasProduct;
    Num quantity;
    byte[] status;

    void clear() {
      orderId = null;
      hasOrderId = false;
      product = null;
      hasProduct = false;
      quantity = null;
      status = null;
    }

    void read(byte[] stored, Bytes key) {
      clear();
      if (stored == null) return;
      try (JsonParser p = JSON.createParser(stored)) {
        if (p.nextToken() != JsonToken.START_OBJECT) throw new IOException("not an object");
        String name;
        while ((name = p.nextFieldName()) != null) {
          JsonToken t = p.nextToken();
          switch (name) {
            case "orderId" -> {
              orderId = utf8(string(p, t));
              hasOrderId = true;
            }
            case "product" -> {
              product = utf8(string(p, t));
              hasProduct = true;
            }
            case "quantity" -> {
              quantity = new Num();
              quantity.read(p, t);
            }
            case "status" -> status = utf8(string(p, t));
            default -> p.skipChildren();
          }
        }
      } catch (IOException e) {
        throw new IllegalStateException("corrupt order view " + key + " in store " + ORDERS + ": "
            + e.getMessage());
      }
    }

    byte[] write(Out out) {
      out.reset();
      out.raw('{');
      boolean first = true;
      if (hasOrderId) {
        out.raw(K_ORDER_ID).strOrNull(orderId);
        first = false;
      }
      if (hasProduct) {
        if (!first) out.raw(',');
        out.raw(K_PRODUCT).strOrNull(product);
        first = false;
      }
      if (quantity != null) {
        if (!first) out.raw(',');
        out.raw(K_QUANTITY);
        if (quantity.integral) {
          out.num(quantity.value);
        } else {
          out.raw(NULL);
        }
        first = false;
      }
      if (status != null) {
        if (!first) out.raw(',');
        out.raw(K_STATUS).str(status);
      }
      return out.raw('}').toArray();
    }
  }

  /** Projection {@code product_totals} (key = product): {product, orders, quantity}. */
  static final class ProductTotals implements Processor<Bytes, byte[], Void, Void> {
    private KeyValueStore<Bytes, byte[]> store;
    private final Out out = new Out();

    @Override
    public void init(ProcessorContext<Void, Void> context) {
      store = context.getStateStore(PRODUCT_TOTALS);
    }

    @Override
    public void process(Record<Bytes, byte[]> r) {
      byte[] v = r.value();
      if (r.key() == null || v == null || v.length != 9) {
        Json.skip("a product_totals repartition record is not [tag][8-byte number] with a key",
            v == null ? null : v.length + " bytes");
        return;
      }
      long n = 0;
      for (int i = 1; i < 9; i++) n = (n << 8) | (v[i] & 0xff);
      long orders = 0;
      long quantity = 0;
      byte[] current = store.get(r.key());
      if (current != null) {
        try (JsonParser p = JSON.createParser(current)) {
          if (p.nextToken() != JsonToken.START_OBJECT) throw new IOException("not an object");
          String name;
          while ((name = p.nextFieldName()) != null) {
            JsonToken t = p.nextToken();
            switch (name) {
              case "orders" -> orders = t == JsonToken.VALUE_NUMBER_INT ? p.getLongValue() : 0;
              case "quantity" -> quantity = t == JsonToken.VALUE_NUMBER_INT ? p.getLongValue() : 0;
              default -> p.skipChildren();
            }
          }
        } catch (IOException e) {
          throw new IllegalStateException("corrupt totals " + r.key() + " in store "
              + PRODUCT_TOTALS + ": " + e.getMessage());
        }
      }
      switch (v[0]) {
        case CREATED -> {
          orders += 1;
          quantity += n;
        }
        case ADJUSTED -> quantity += n;
        case CANCELLED -> {
          orders -= 1;
          quantity -= n;
        }
        default -> {
          Json.skip("unknown product_totals tag " + v[0], null);
          return;
        }
      }
      out.reset();
      out.raw(PT_PRODUCT).str(r.key().get()).raw(PT_ORDERS).num(orders).raw(PT_QUANTITY)
          .num(quantity).raw('}');
      store.put(r.key(), out.toArray());
    }
  }

  // ---- parsing and writing ----------------------------------------------------------------

  /** The fields the rules read, from one streaming scan of a command or an event. */
  static final class Fields {
    String type;
    String orderId;
    String product;
    String commandId;
    final Num quantity = new Num();
    final Num delta = new Num();

    /** The fields of {@code value}, or null when it is not a JSON object (skipped, and said). */
    static Fields scan(byte[] value, String what) {
      Fields f = new Fields();
      try (JsonParser p = JSON.createParser(value)) {
        if (p.nextToken() != JsonToken.START_OBJECT) {
          Json.skip("the " + what + " is not a JSON object", text(value));
          return null;
        }
        String name;
        while ((name = p.nextFieldName()) != null) {
          JsonToken t = p.nextToken();
          switch (name) {
            case "type" -> f.type = string(p, t);
            case "orderId" -> f.orderId = string(p, t);
            case "product" -> f.product = string(p, t);
            case "commandId" -> f.commandId = string(p, t);
            case "quantity" -> f.quantity.read(p, t);
            case "delta" -> f.delta.read(p, t);
            default -> p.skipChildren();
          }
        }
      } catch (IOException e) {
        Json.skip("the " + what + " is not valid JSON (" + e.getMessage() + ")", text(value));
        return null;
      }
      return f;
    }
  }

  /** An integral number field as the naive peer reads it (Json.integer), and how it was shown. */
  static final class Num {
    boolean integral;
    long value;
    String shown = "null"; // for rejection reasons, as the naive peer prints the JSON node

    void read(JsonParser p, JsonToken t) throws IOException {
      integral = false;
      value = 0;
      switch (t) {
        case VALUE_NUMBER_INT -> {
          integral = true;
          value = p.getNumberType() == JsonParser.NumberType.BIG_INTEGER
              ? p.getBigIntegerValue().longValue() : p.getLongValue();
          shown = p.getText();
        }
        case VALUE_NUMBER_FLOAT -> {
          double d = p.getDoubleValue();
          integral = !Double.isNaN(d) && !Double.isInfinite(d) && d == Math.rint(d);
          value = (long) d;
          shown = Double.toString(d);
        }
        case VALUE_STRING -> shown = '"' + p.getText() + '"';
        case START_OBJECT, START_ARRAY -> {
          shown = t == JsonToken.START_OBJECT ? "{…}" : "[…]";
          p.skipChildren();
        }
        default -> shown = p.getText();
      }
    }
  }

  /** A string field's value, or null when it is not a string (skipping an object or array). */
  private static String string(JsonParser p, JsonToken t) throws IOException {
    if (t == JsonToken.VALUE_STRING) return p.getText();
    p.skipChildren();
    return null;
  }

  private static byte[] utf8(String s) {
    return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
  }

  private static String text(byte[] v) {
    return new String(v, StandardCharsets.UTF_8);
  }

  private static byte[] ascii(String s) {
    return s.getBytes(StandardCharsets.US_ASCII);
  }

  private static final byte[] EMPTY = new byte[0];
  private static final byte[] NULL = ascii("null");
  private static final byte[] EV_CREATED = ascii("{\"type\":\"OrderCreated\",\"orderId\":");
  private static final byte[] EV_ADJUSTED = ascii("{\"type\":\"QuantityAdjusted\",\"orderId\":");
  private static final byte[] EV_CANCELLED = ascii("{\"type\":\"OrderCancelled\",\"orderId\":");
  private static final byte[] F_PRODUCT = ascii(",\"product\":");
  private static final byte[] F_QUANTITY = ascii(",\"quantity\":");
  private static final byte[] F_DELTA = ascii(",\"delta\":");
  private static final byte[] RJ_COMMAND_ID = ascii("{\"commandId\":");
  private static final byte[] RJ_COMMAND_TYPE = ascii(",\"commandType\":");
  private static final byte[] RJ_AGGREGATE = ascii(",\"aggregate\":\"order\",\"aggregateId\":");
  private static final byte[] RJ_CODE = ascii(",\"code\":");
  private static final byte[] RJ_REASON = ascii(",\"reason\":");
  private static final byte[] RJ_TIMESTAMP = ascii(",\"timestamp\":");
  private static final byte[] K_ORDER_ID = ascii("\"orderId\":");
  private static final byte[] K_PRODUCT = ascii("\"product\":");
  private static final byte[] K_QUANTITY = ascii("\"quantity\":");
  private static final byte[] K_STATUS = ascii("\"status\":");
  private static final byte[] PT_PRODUCT = ascii("{\"product\":");
  private static final byte[] PT_ORDERS = ascii(",\"orders\":");
  private static final byte[] PT_QUANTITY = ascii(",\"quantity\":");

  /**
   * A reused output buffer: JSON written byte by byte (strings escaped as Jackson escapes them:
   * quote, backslash and control characters; UTF-8 passed through), and varints.
   */
  static final class Out {
    private static final byte[] HEX = ascii("0123456789ABCDEF");
    private byte[] b = new byte[512];
    private int n;

    Out reset() {
      n = 0;
      return this;
    }

    byte[] toArray() {
      return Arrays.copyOf(b, n);
    }

    private void room(int more) {
      if (n + more > b.length) b = Arrays.copyOf(b, Math.max(b.length * 2, n + more));
    }

    Out raw(int c) {
      room(1);
      b[n++] = (byte) c;
      return this;
    }

    Out raw(byte[] s) {
      return raw(s, 0, s.length);
    }

    Out raw(byte[] s, int off, int len) {
      room(len);
      System.arraycopy(s, off, b, n, len);
      n += len;
      return this;
    }

    Out strOrNull(byte[] utf8) {
      return utf8 == null ? raw(NULL) : str(utf8);
    }

    /** A JSON string from UTF-8 bytes. */
    Out str(byte[] utf8) {
      room(utf8.length * 6 + 2);
      b[n++] = '"';
      for (byte c : utf8) {
        if (c >= 0x20 && c != '"' && c != '\\' || c < 0) { // printable ASCII, or part of UTF-8
          b[n++] = c;
        } else {
          escape(c);
        }
      }
      b[n++] = '"';
      return this;
    }

    /** A JSON string from a Java string (ASCII written directly, anything else as UTF-8). */
    Out str(String s) {
      int len = s.length();
      for (int i = 0; i < len; i++) {
        if (s.charAt(i) >= 0x80) return str(s.getBytes(StandardCharsets.UTF_8));
      }
      room(len * 6 + 2);
      b[n++] = '"';
      for (int i = 0; i < len; i++) {
        char c = s.charAt(i);
        if (c >= 0x20 && c != '"' && c != '\\') {
          b[n++] = (byte) c;
        } else {
          escape((byte) c);
        }
      }
      b[n++] = '"';
      return this;
    }

    private void escape(byte c) {
      b[n++] = '\\';
      switch (c) {
        case '"' -> b[n++] = '"';
        case '\\' -> b[n++] = '\\';
        case '\n' -> b[n++] = 'n';
        case '\r' -> b[n++] = 'r';
        case '\t' -> b[n++] = 't';
        case '\b' -> b[n++] = 'b';
        case '\f' -> b[n++] = 'f';
        default -> {
          b[n++] = 'u';
          b[n++] = '0';
          b[n++] = '0';
          b[n++] = HEX[(c >> 4) & 0xf];
          b[n++] = HEX[c & 0xf];
        }
      }
    }

    Out num(long v) {
      room(20);
      if (v == Long.MIN_VALUE) return raw(ascii(Long.toString(v)));
      if (v < 0) {
        b[n++] = '-';
        v = -v;
      }
      int start = n;
      do {
        b[n++] = (byte) ('0' + (int) (v % 10));
        v /= 10;
      } while (v != 0);
      for (int i = start, j = n - 1; i < j; i++, j--) { // digits were written backwards
        byte t = b[i];
        b[i] = b[j];
        b[j] = t;
      }
      return this;
    }

    Out varint(long v) {
      room(10);
      while ((v & ~0x7fL) != 0) {
        b[n++] = (byte) ((v & 0x7f) | 0x80);
        v >>>= 7;
      }
      b[n++] = (byte) v;
      return this;
    }
  }
}
