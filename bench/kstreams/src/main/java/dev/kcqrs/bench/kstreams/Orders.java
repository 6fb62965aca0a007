package dev.kcqrs.bench.kstreams;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Named;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;

/**
 * Workload 2 (bench/WORKLOADS.md, rules normative in bench/orders/topology.yaml) with the
 * Processor API:
 *
 * <pre>
 *   input ─► order-commands [order-aggregates] ─┬─► events-sink     (&lt;run&gt;.orders.events)
 *                                              └─► rejections-sink (&lt;run&gt;.orders.rejections)
 *   &lt;run&gt;.orders.events ─┬─► orders-projection [orders]
 *                        └─► by-product ─► repartition (&lt;app-id&gt;-product_totals-repartition, 4 partitions)
 *                                        ─► product-totals-projection [product_totals]
 * </pre>
 *
 * The events path is built with the DSL (for its internal repartition topic) around Processor API
 * processors; the command path is added to the same topology with the plain Processor API.
 */
final class Orders {
  static final String AGGREGATES = "order-aggregates";
  static final String ORDERS = "orders";
  static final String PRODUCT_TOTALS = "product_totals";
  static final int DEDUP_WINDOW = 100;

  private static final String EVENTS_SINK = "events-sink";
  private static final String REJECTIONS_SINK = "rejections-sink";

  // The headers kcqrs writes on every event and rejection (engine/codec/headers.h), in its
  // order: aggregate, aggregate.id, command.type, command.id (unless empty), type, and on
  // events version (the aggregate version the event made, decimal).
  static final String H_AGGREGATE = "kcqrs.aggregate";
  static final String H_AGGREGATE_ID = "kcqrs.aggregate.id";
  static final String H_COMMAND_TYPE = "kcqrs.command.type";
  static final String H_COMMAND_ID = "kcqrs.command.id";
  static final String H_TYPE = "kcqrs.type";
  static final String H_VERSION = "kcqrs.version";

  private Orders() {}

  static Topology build(String input, String eventsTopic, String rejectionsTopic) {
    Serde<String> s = Serdes.String();
    StreamsBuilder b = new StreamsBuilder();
    // Default persistent (RocksDB) stores, changelogged (the default).
    b.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(ORDERS), s, s));
    b.addStateStore(
        Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(PRODUCT_TOTALS), s, s));

    KStream<String, String> events =
        b.stream(eventsTopic, Consumed.with(s, s).withName("events-source"));
    events.process(OrdersProjection::new, Named.as("orders-projection"), ORDERS);
    events
        .process(ByProduct::new, Named.as("by-product"))
        .repartition(Repartitioned.<String, String>as(PRODUCT_TOTALS)
            .withKeySerde(s).withValueSerde(s).withNumberOfPartitions(4))
        .process(ProductTotals::new, Named.as("product-totals-projection"), PRODUCT_TOTALS);

    Topology t = b.build();
    t.addSource("commands-source", s.deserializer(), s.deserializer(), input);
    t.addProcessor("order-commands", CommandProcessor::new, "commands-source");
    t.addStateStore(
        Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(AGGREGATES), s, s),
        "order-commands");
    t.addSink(EVENTS_SINK, eventsTopic, s.serializer(), s.serializer(), "order-commands");
    t.addSink(REJECTIONS_SINK, rejectionsTopic, s.serializer(), s.serializer(), "order-commands");
    return t;
  }

  /**
   * The order aggregate: decides each command against the stored state, emits events or a
   * rejection, and remembers the last {@value #DEDUP_WINDOW} command ids of the aggregate (a command
   * whose id was seen produces nothing). Store value:
   * {"version":N,"state":null|{product,quantity,status},"commands":["c-…",…]}.
   */
  static final class CommandProcessor implements Processor<String, String, String, String> {
    private ProcessorContext<String, String> ctx;
    private KeyValueStore<String, String> store;

    @Override
    public void init(ProcessorContext<String, String> context) {
      ctx = context;
      store = context.getStateStore(AGGREGATES);
    }

    @Override
    public void process(Record<String, String> r) {
      ObjectNode command = Json.parseObject(r.value(), "the command");
      if (command == null) return;
      String type = Json.text(command, "type");
      if (type == null) {
        Json.skip("the command has no 'type' field", r.value());
        return;
      }
      if (!type.equals("CreateOrder") && !type.equals("AdjustQuantity")
          && !type.equals("CancelOrder")) {
        Json.skip("unknown command type '" + type + "' for aggregate 'order'", r.value());
        return;
      }
      String id = Json.text(command, "orderId");
      if (id == null) id = r.key();
      if (id == null) {
        Json.skip("the command has no orderId and the record no key", r.value());
        return;
      }
      String commandId = Json.text(command, "commandId");
      if (commandId == null) commandId = "";

      String stored = store.get(id);
      ObjectNode aggregate;
      if (stored != null) {
        aggregate = Json.parseObject(stored, "the stored order aggregate " + id);
        if (aggregate == null) throw new IllegalStateException("corrupt aggregate " + id);
      } else {
        aggregate = Json.MAPPER.createObjectNode();
        aggregate.put("version", 0);
        aggregate.putNull("state");
        aggregate.putArray("commands");
      }
      ArrayNode seen = (ArrayNode) aggregate.get("commands");
      if (!commandId.isEmpty()) {
        for (JsonNode c : seen) {
          if (commandId.equals(c.asText())) return; // a retry: its outcome is already out
        }
      }

      JsonNode st = aggregate.get("state");
      ObjectNode state = st instanceof ObjectNode o ? o : null;
      String reject = null; // code
      String reason = null;
      ObjectNode event = null;
      switch (type) {
        case "CreateOrder" -> {
          Long quantity = Json.integer(command, "quantity");
          if (state != null) {
            reject = "already_exists";
            reason = "order " + id + " already exists";
          } else if (quantity == null || quantity <= 0) {
            reject = "invalid";
            reason = "quantity must be greater than 0, got " + command.get("quantity");
          } else {
            event = Json.MAPPER.createObjectNode();
            event.put("type", "OrderCreated");
            event.put("orderId", id);
            event.set("product", command.get("product"));
            event.put("quantity", quantity);
            state = Json.MAPPER.createObjectNode();
            state.set("product", command.get("product"));
            state.put("quantity", quantity);
            state.put("status", "CREATED");
            aggregate.set("state", state);
          }
        }
        case "AdjustQuantity" -> {
          Long delta = Json.integer(command, "delta");
          if (state == null) {
            reject = "not_found";
            reason = "order " + id + " does not exist";
          } else if ("CANCELLED".equals(Json.text(state, "status"))) {
            reject = "cancelled";
            reason = "order " + id + " is cancelled";
          } else if (delta == null) {
            reject = "invalid";
            reason = "delta must be an integer, got " + command.get("delta");
          } else if (state.path("quantity").asLong() + delta <= 0) {
            reject = "invalid";
            reason = "quantity would drop to " + (state.path("quantity").asLong() + delta);
          } else {
            long quantity = state.path("quantity").asLong() + delta;
            event = Json.MAPPER.createObjectNode();
            event.put("type", "QuantityAdjusted");
            event.put("orderId", id);
            event.set("product", state.get("product"));
            event.put("delta", delta);
            event.put("quantity", quantity);
            state.put("quantity", quantity);
          }
        }
        default -> { // CancelOrder
          if (state == null) {
            reject = "not_found";
            reason = "order " + id + " does not exist";
          } else if ("CANCELLED".equals(Json.text(state, "status"))) {
            reject = "already_cancelled";
            reason = "order " + id + " is already cancelled";
          } else {
            event = Json.MAPPER.createObjectNode();
            event.put("type", "OrderCancelled");
            event.put("orderId", id);
            event.set("product", state.get("product"));
            event.set("quantity", state.get("quantity"));
            state.put("status", "CANCELLED");
          }
        }
      }

      // New headers, not the command's: an output record says what made it.
      Headers headers = new RecordHeaders();
      headers.add(H_AGGREGATE, utf8("order"));
      headers.add(H_AGGREGATE_ID, utf8(id));
      headers.add(H_COMMAND_TYPE, utf8(type));
      if (!commandId.isEmpty()) headers.add(H_COMMAND_ID, utf8(commandId));
      if (reject != null) {
        headers.add(H_TYPE, utf8("Rejected"));
        ObjectNode rejection = Json.MAPPER.createObjectNode();
        rejection.put("commandId", commandId);
        rejection.put("commandType", type);
        rejection.put("aggregate", "order");
        rejection.put("aggregateId", id);
        rejection.put("code", reject);
        rejection.put("reason", reason);
        rejection.put("timestamp", r.timestamp());
        ctx.forward(new Record<>(id, Json.write(rejection), r.timestamp(), headers),
            REJECTIONS_SINK);
      } else {
        long version = aggregate.path("version").asLong() + 1;
        aggregate.put("version", version);
        headers.add(H_TYPE, utf8(event.get("type").asText()));
        headers.add(H_VERSION, utf8(Long.toString(version)));
        ctx.forward(new Record<>(id, Json.write(event), r.timestamp(), headers), EVENTS_SINK);
      }
      if (!commandId.isEmpty()) {
        seen.add(commandId);
        while (seen.size() > DEDUP_WINDOW) seen.remove(0);
      }
      store.put(id, Json.write(aggregate));
    }
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  /** Projection `orders` (key = orderId): {orderId, product, quantity, status}. */
  static final class OrdersProjection implements Processor<String, String, Void, Void> {
    private KeyValueStore<String, String> store;

    @Override
    public void init(ProcessorContext<Void, Void> context) {
      store = context.getStateStore(ORDERS);
    }

    @Override
    public void process(Record<String, String> r) {
      ObjectNode event = Json.parseObject(r.value(), "the event");
      if (event == null) return;
      String type = Json.text(event, "type");
      String key = r.key() != null ? r.key() : Json.text(event, "orderId");
      if (type == null || key == null) {
        Json.skip("the event has no type or no key", r.value());
        return;
      }
      ObjectNode view;
      switch (type) {
        case "OrderCreated" -> {
          view = Json.MAPPER.createObjectNode();
          view.set("orderId", event.get("orderId"));
          view.set("product", event.get("product"));
          view.set("quantity", event.get("quantity"));
          view.put("status", "CREATED");
        }
        case "QuantityAdjusted" -> {
          view = current(key);
          view.set("quantity", event.get("quantity"));
        }
        case "OrderCancelled" -> {
          view = current(key);
          view.put("status", "CANCELLED");
        }
        default -> {
          return; // an event type this projection does not handle
        }
      }
      store.put(key, Json.write(view));
    }

    private ObjectNode current(String key) {
      String v = store.get(key);
      ObjectNode view = v == null ? null : Json.parseObject(v, "the stored order view " + key);
      return view != null ? view : Json.MAPPER.createObjectNode();
    }
  }

  /** Re-keys an event by its product (for the repartition in front of product_totals). */
  static final class ByProduct implements Processor<String, String, String, String> {
    private ProcessorContext<String, String> ctx;

    @Override
    public void init(ProcessorContext<String, String> context) {
      ctx = context;
    }

    @Override
    public void process(Record<String, String> r) {
      ObjectNode event = Json.parseObject(r.value(), "the event");
      if (event == null) return;
      String product = Json.text(event, "product");
      if (product == null) {
        Json.skip("the event has no product", r.value());
        return;
      }
      ctx.forward(r.withKey(product));
    }
  }

  /** Projection `product_totals` (key = product): {product, orders, quantity}. */
  static final class ProductTotals implements Processor<String, String, Void, Void> {
    private KeyValueStore<String, String> store;

    @Override
    public void init(ProcessorContext<Void, Void> context) {
      store = context.getStateStore(PRODUCT_TOTALS);
    }

    @Override
    public void process(Record<String, String> r) {
      ObjectNode event = Json.parseObject(r.value(), "the event");
      if (event == null) return;
      String type = Json.text(event, "type");
      if (type == null || r.key() == null) {
        Json.skip("the event has no type or no product", r.value());
        return;
      }
      long dOrders;
      long dQuantity;
      switch (type) {
        case "OrderCreated" -> {
          dOrders = 1;
          dQuantity = event.path("quantity").asLong();
        }
        case "QuantityAdjusted" -> {
          dOrders = 0;
          dQuantity = event.path("delta").asLong();
        }
        case "OrderCancelled" -> {
          dOrders = -1;
          dQuantity = -event.path("quantity").asLong();
        }
        default -> {
          return;
        }
      }
      String v = store.get(r.key());
      ObjectNode view = v == null ? null : Json.parseObject(v, "the stored totals " + r.key());
      long orders = view == null ? 0 : view.path("orders").asLong();
      long quantity = view == null ? 0 : view.path("quantity").asLong();
      ObjectNode next = Json.MAPPER.createObjectNode();
      next.put("product", r.key());
      next.put("orders", orders + dOrders);
      next.put("quantity", quantity + dQuantity);
      store.put(r.key(), Json.write(next));
    }
  }
}
