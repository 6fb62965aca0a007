package dev.kcqrs.examples.clients

import com.fasterxml.jackson.databind.ObjectMapper
import com.fasterxml.jackson.module.scala.DefaultScalaModule
import java.net.URI
import java.net.URLEncoder
import java.net.http.{HttpClient, HttpRequest, HttpResponse}
import java.nio.charset.StandardCharsets.UTF_8
import java.time.Duration
import java.util.{Base64, Properties, UUID}
import org.apache.kafka.clients.consumer.{ConsumerConfig, KafkaConsumer}
import org.apache.kafka.clients.producer.{KafkaProducer, ProducerConfig, ProducerRecord, RecordMetadata}
import org.apache.kafka.common.TopicPartition
import org.apache.kafka.common.serialization.{StringDeserializer, StringSerializer}
import scala.jdk.CollectionConverters._
import scala.util.Using

/** Sends two CreateOrder commands to the orders example (examples/orders/topology.yaml) with the
  * Kafka Java client, one accepted and one rejected (quantity 0), follows their outcomes on
  * orders.events and orders.rejections by commandId, and reads the read model back over HTTP
  * with read-your-writes. Exits 1 saying what was not seen.
  *
  * Environment: KCQRS_BOOTSTRAP (default localhost:9092), KCQRS_HTTP (default
  * http://127.0.0.1:8080), KCQRS_CLIENT_TIMEOUT_MS (default 30000).
  */
object OrdersClient {
  private val Commands = "orders.commands"
  private val Events = "orders.events"
  private val Rejections = "orders.rejections"
  private val json = new ObjectMapper().registerModule(DefaultScalaModule)

  final class Failure(message: String) extends Exception(message)

  private def env(name: String, default: String): String =
    sys.env.get(name).filter(_.nonEmpty).getOrElse(default)

  def main(args: Array[String]): Unit =
    try {
      run()
      println("scala client: OK")
    } catch {
      case f: Failure =>
        System.err.println(s"scala client: FAILED: ${f.getMessage}")
        sys.exit(1)
      case e: Exception =>
        System.err.println(s"scala client: FAILED: $e")
        sys.exit(1)
    }

  private def run(): Unit = {
    val bootstrap = env("KCQRS_BOOTSTRAP", "localhost:9092")
    val http = env("KCQRS_HTTP", "http://127.0.0.1:8080")
    val timeoutMs = env("KCQRS_CLIENT_TIMEOUT_MS", "30000").toLong
    val run = UUID.randomUUID().toString.take(8)

    // The article's command, and one the aggregate refuses: quantity must be > 0.
    val accepted = CreateOrderCommand(s"scala-$run-1", "gizmo", 5)
    val rejected = CreateOrderCommand(s"scala-$run-2", "gizmo", 0)
    val acceptedId = s"scala-$run-c1"
    val rejectedId = s"scala-$run-c2"

    Using.resources(outcomeConsumer(bootstrap), producer(bootstrap)) { (outcomes, producer) =>
      val acceptedAt = send(producer, accepted, acceptedId)
      val rejectedAt = send(producer, rejected, rejectedId)
      println(s"sent $acceptedId to ${acceptedAt.topic}-${acceptedAt.partition}@${acceptedAt.offset}, " +
        s"$rejectedId to ${rejectedAt.topic}-${rejectedAt.partition}@${rejectedAt.offset}")

      // Follow the outcomes: an event or a rejection names the command that caused it.
      var created: Option[OrderCreatedEvent] = None
      var rejection: Option[CommandRejected] = None
      val deadline = System.currentTimeMillis() + timeoutMs
      while ((created.isEmpty || rejection.isEmpty) && System.currentTimeMillis() < deadline) {
        for (r <- outcomes.poll(Duration.ofMillis(200)).asScala) {
          if (r.topic == Events) {
            val commandId = Option(r.headers.lastHeader("kcqrs.command.id")).map(h => new String(h.value, UTF_8))
            commandId match {
              case Some(`rejectedId`) => throw new Failure(s"command $rejectedId (quantity 0) was accepted: ${r.value}")
              case Some(`acceptedId`) =>
                created = Some(json.readValue(r.value, classOf[OrderCreatedEvent]))
                println(s"event:     ${created.get} for $acceptedId")
              case _ =>
            }
          } else {
            val outcome = json.readValue(r.value, classOf[CommandRejected])
            outcome.commandId match {
              case `acceptedId` => throw new Failure(s"command $acceptedId was rejected: ${r.value}")
              case `rejectedId` =>
                rejection = Some(outcome)
                println(s"rejection: $outcome")
              case _ =>
            }
          }
        }
      }
      val event = created.getOrElse(
        throw new Failure(s"no OrderCreated event for command $acceptedId on $Events within $timeoutMs ms"))
      val refusal = rejection.getOrElse(
        throw new Failure(s"no rejection for command $rejectedId on $Rejections within $timeoutMs ms"))
      val expected = OrderCreatedEvent(accepted.orderId, accepted.product, accepted.quantity)
      if (event != expected) throw new Failure(s"event $event does not match the command ($expected)")
      if (refusal.code != "invalid") throw new Failure(s"rejection code is ${refusal.code}, expected invalid")

      // Read-your-writes: the query waits until the store has applied the command.
      val client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build()
      val view = getOrder(client, http, accepted.orderId, positionToken(acceptedAt))
      if (view.statusCode != 200)
        throw new Failure(s"GET /stores/orders/keys/${accepted.orderId} answered ${view.statusCode}: ${view.body}")
      val model = json.readValue(view.body, classOf[OrderReadModel])
      println(s"view:      $model")
      val wanted = OrderReadModel(accepted.orderId, accepted.product, accepted.quantity, "CREATED")
      if (model != wanted) throw new Failure(s"the view $model does not match the accepted command ($wanted)")
      val none = getOrder(client, http, rejected.orderId, positionToken(rejectedAt))
      if (none.statusCode != 404)
        throw new Failure(
          s"the rejected order ${rejected.orderId} answered ${none.statusCode} (expected 404): ${none.body}")
      println(s"view:      ${rejected.orderId} not found, as it was rejected")
    }
  }

  // Idempotent: a retry after a lost acknowledgement is not written twice. The default
  // partitioner hashes the key (the orderId) with murmur2, as kcqrs expects.
  private def producer(bootstrap: String): KafkaProducer[String, String] = {
    val p = new Properties()
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap)
    p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true")
    p.put(ProducerConfig.ACKS_CONFIG, "all")
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, classOf[StringSerializer].getName)
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, classOf[StringSerializer].getName)
    new KafkaProducer[String, String](p)
  }

  // Committed events and rejections only (kcqrs writes them in transactions), from the
  // end of each partition as it is before the commands are sent.
  private def outcomeConsumer(bootstrap: String): KafkaConsumer[String, String] = {
    val p = new Properties()
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap)
    p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed")
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false")
    p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, classOf[StringDeserializer].getName)
    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, classOf[StringDeserializer].getName)
    val consumer = new KafkaConsumer[String, String](p)
    val partitions = Seq(Events, Rejections).flatMap { topic =>
      val infos = Option(consumer.partitionsFor(topic, Duration.ofSeconds(10))).map(_.asScala).getOrElse(Nil)
      if (infos.isEmpty) {
        consumer.close()
        throw new Failure(s"no topic $topic at $bootstrap: is kcqrs running examples/orders/topology.yaml there?")
      }
      infos.map(i => new TopicPartition(i.topic, i.partition))
    }
    consumer.assign(partitions.asJava)
    consumer.seekToEnd(partitions.asJava)
    // seekToEnd is lazy: fix the positions now, before the commands exist.
    partitions.foreach(consumer.position(_, Duration.ofSeconds(10)))
    consumer
  }

  // Keyed by the aggregate id: every command of one order lands on one partition.
  private def send(producer: KafkaProducer[String, String], command: CreateOrderCommand,
                   commandId: String): RecordMetadata = {
    val value = Map("type" -> "CreateOrder", "orderId" -> command.orderId, "product" -> command.product,
      "quantity" -> command.quantity, "commandId" -> commandId)
    producer.send(new ProducerRecord(Commands, command.orderId, json.writeValueAsString(value))).get()
  }

  // The position of a command, as POST /commands answers it: base64url, unpadded, of
  // {"t": topic, "p": partition, "o": offset} (docs/http-api.md, "Read-your-writes").
  private def positionToken(at: RecordMetadata): String =
    Base64.getUrlEncoder.withoutPadding.encodeToString(
      json.writeValueAsBytes(Map("t" -> at.topic, "p" -> at.partition, "o" -> at.offset)))

  private def getOrder(client: HttpClient, http: String, orderId: String, position: String): HttpResponse[String] = {
    val uri = URI.create(s"$http/stores/orders/keys/${URLEncoder.encode(orderId, UTF_8)}?position=$position")
    client.send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(15)).GET().build(),
      HttpResponse.BodyHandlers.ofString())
  }
}
