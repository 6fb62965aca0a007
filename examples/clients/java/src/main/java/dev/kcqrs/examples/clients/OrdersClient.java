package dev.kcqrs.examples.clients;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Properties;
import java.util.UUID;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Sends two CreateOrder commands to the orders example (examples/orders/topology.yaml) with
 * the Kafka Java client, one that the aggregate accepts and one that it rejects (quantity 0),
 * follows their outcomes on orders.events and orders.rejections by commandId, and reads the
 * read model back over HTTP with read-your-writes. Exits 1 with a message saying what was not
 * seen.
 *
 * <p>Environment: KCQRS_BOOTSTRAP (default localhost:9092), KCQRS_HTTP (default
 * http://127.0.0.1:8080), KCQRS_CLIENT_TIMEOUT_MS (default 30000).
 */
public final class OrdersClient {
  private static final String COMMANDS = "orders.commands";
  private static final String EVENTS = "orders.events";
  private static final String REJECTIONS = "orders.rejections";
  private static final ObjectMapper JSON = new ObjectMapper();

  private OrdersClient() {}

  /** What was expected and not seen. */
  static final class Failure extends Exception {
    Failure(String message) {
      super(message);
    }
  }

  public static void main(String[] args) {
    try {
      run();
      System.out.println("java client: OK");
    } catch (Failure f) {
      System.err.println("java client: FAILED: " + f.getMessage());
      System.exit(1);
    } catch (Exception e) {
      System.err.println("java client: FAILED: " + e);
      System.exit(1);
    }
  }

  private static String env(String name, String fallback) {
    String v = System.getenv(name);
    return v == null || v.isEmpty() ? fallback : v;
  }

  private static void run() throws Exception {
    String bootstrap = env("KCQRS_BOOTSTRAP", "localhost:9092");
    String http = env("KCQRS_HTTP", "http://127.0.0.1:8080");
    long timeoutMs = Long.parseLong(env("KCQRS_CLIENT_TIMEOUT_MS", "30000"));
    String run = UUID.randomUUID().toString().substring(0, 8);

    // The article's command, and one the aggregate refuses: quantity must be > 0.
    CreateOrderCommand accepted = new CreateOrderCommand("java-" + run + "-1", "widget", 3);
    CreateOrderCommand rejected = new CreateOrderCommand("java-" + run + "-2", "widget", 0);
    String acceptedId = "java-" + run + "-c1";
    String rejectedId = "java-" + run + "-c2";

    try (KafkaConsumer<String, String> outcomes = outcomeConsumer(bootstrap);
         KafkaProducer<String, String> producer = producer(bootstrap)) {
      RecordMetadata acceptedAt = send(producer, accepted, acceptedId);
      RecordMetadata rejectedAt = send(producer, rejected, rejectedId);
      System.out.printf("sent %s (%s) to %s-%d@%d, %s (%s) to %s-%d@%d%n",
          acceptedId, accepted.getOrderId(), acceptedAt.topic(), acceptedAt.partition(),
          acceptedAt.offset(), rejectedId, rejected.getOrderId(), rejectedAt.topic(),
          rejectedAt.partition(), rejectedAt.offset());

      // Follow the outcomes: an event or a rejection names the command that caused it.
      OrderCreatedEvent created = null;
      JsonNode rejection = null;
      long deadline = System.currentTimeMillis() + timeoutMs;
      while ((created == null || rejection == null) && System.currentTimeMillis() < deadline) {
        for (ConsumerRecord<String, String> r : outcomes.poll(Duration.ofMillis(200))) {
          if (r.topic().equals(EVENTS)) {
            String commandId = header(r, "kcqrs.command.id");
            if (rejectedId.equals(commandId)) {
              throw new Failure("command " + rejectedId + " (quantity 0) was accepted: " + r.value());
            }
            if (acceptedId.equals(commandId)) {
              created = JSON.readValue(r.value(), OrderCreatedEvent.class);
              System.out.println("event:     " + created + " for " + commandId);
            }
          } else {
            JsonNode value = JSON.readTree(r.value());
            String commandId = value.path("commandId").asText();
            if (acceptedId.equals(commandId)) {
              throw new Failure("command " + acceptedId + " was rejected: " + r.value());
            }
            if (rejectedId.equals(commandId)) {
              rejection = value;
              System.out.println("rejection: " + value.path("code").asText() + " ("
                  + value.path("reason").asText() + ") for " + commandId);
            }
          }
        }
      }
      if (created == null) {
        throw new Failure("no OrderCreated event for command " + acceptedId + " on " + EVENTS
            + " within " + timeoutMs + " ms");
      }
      if (rejection == null) {
        throw new Failure("no rejection for command " + rejectedId + " on " + REJECTIONS
            + " within " + timeoutMs + " ms");
      }
      OrderCreatedEvent expected = new OrderCreatedEvent(accepted.getOrderId(),
          accepted.getProduct(), accepted.getQuantity());
      if (!created.equals(expected)) {
        throw new Failure("event " + created + " does not match the command (" + expected + ")");
      }
      if (!rejection.path("code").asText().equals("invalid")) {
        throw new Failure("rejection code is " + rejection.path("code") + ", expected \"invalid\"");
      }

      // Read-your-writes: the query waits until the store has applied the command.
      HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
      HttpResponse<String> view = get(client, http, accepted.getOrderId(), positionToken(acceptedAt));
      if (view.statusCode() != 200) {
        throw new Failure("GET /stores/orders/keys/" + accepted.getOrderId() + " answered "
            + view.statusCode() + ": " + view.body());
      }
      OrderReadModel model = JSON.readValue(view.body(), OrderReadModel.class);
      System.out.println("view:      " + model);
      if (!model.getOrderId().equals(accepted.getOrderId())
          || !model.getProduct().equals(accepted.getProduct())
          || model.getQuantity() != accepted.getQuantity()
          || !"CREATED".equals(model.getStatus())) {
        throw new Failure("the view " + view.body() + " does not match the accepted command");
      }
      HttpResponse<String> none = get(client, http, rejected.getOrderId(), positionToken(rejectedAt));
      if (none.statusCode() != 404) {
        throw new Failure("the rejected order " + rejected.getOrderId() + " answered "
            + none.statusCode() + " (expected 404): " + none.body());
      }
      System.out.println("view:      " + rejected.getOrderId() + " not found, as it was rejected");
    }
  }

  private static KafkaProducer<String, String> producer(String bootstrap) {
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    // Idempotent: a retry after a lost acknowledgement is not written twice. The default
    // partitioner hashes the key (the orderId) with murmur2, as kcqrs expects.
    p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    return new KafkaProducer<>(p);
  }

  // Reads committed events and rejections only (kcqrs writes them in transactions),
  // from the end of each partition as it is before the commands are sent.
  private static KafkaConsumer<String, String> outcomeConsumer(String bootstrap)
      throws Failure {
    Properties p = new Properties();
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p);
    List<TopicPartition> partitions = new ArrayList<>();
    for (String topic : List.of(EVENTS, REJECTIONS)) {
      List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofSeconds(10));
      if (infos == null || infos.isEmpty()) {
        consumer.close();
        throw new Failure("no topic " + topic + " at " + bootstrap
            + ": is kcqrs running examples/orders/topology.yaml there?");
      }
      infos.forEach(i -> partitions.add(new TopicPartition(i.topic(), i.partition())));
    }
    consumer.assign(partitions);
    consumer.seekToEnd(partitions);
    // seekToEnd is lazy: fix the positions now, before the commands exist.
    partitions.forEach(tp -> consumer.position(tp, Duration.ofSeconds(10)));
    return consumer;
  }

  private static RecordMetadata send(KafkaProducer<String, String> producer,
                                     CreateOrderCommand command, String commandId)
      throws Exception {
    ObjectNode value = JSON.valueToTree(command);
    value.put("commandId", commandId);
    // Keyed by the aggregate id: every command of one order lands on one partition.
    return producer.send(new ProducerRecord<>(COMMANDS, command.getOrderId(),
        JSON.writeValueAsString(value))).get();
  }

  // The position of a command, as POST /commands answers it: base64url, unpadded, of
  // {"t": topic, "p": partition, "o": offset} (docs/http-api.md, "Read-your-writes").
  static String positionToken(RecordMetadata at) throws Exception {
    ObjectNode position = JSON.createObjectNode();
    position.put("t", at.topic());
    position.put("p", at.partition());
    position.put("o", at.offset());
    return Base64.getUrlEncoder().withoutPadding()
        .encodeToString(JSON.writeValueAsBytes(position));
  }

  private static HttpResponse<String> get(HttpClient client, String http, String orderId,
                                          String position) throws Exception {
    URI uri = URI.create(http + "/stores/orders/keys/"
        + URLEncoder.encode(orderId, StandardCharsets.UTF_8) + "?position=" + position);
    return client.send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(15)).GET().build(),
        HttpResponse.BodyHandlers.ofString());
  }

  private static String header(ConsumerRecord<String, String> r, String name) {
    Header h = r.headers().lastHeader(name);
    return h == null ? null : new String(h.value(), StandardCharsets.UTF_8);
  }
}
