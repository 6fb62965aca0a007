package dev.kcqrs.examples.clients

import com.fasterxml.jackson.annotation.JsonIgnoreProperties

// Command case class: the article's own. On the wire it travels with the
// command type and its id (see OrdersClient.scala).
case class CreateOrderCommand(orderId: String, product: String, quantity: Int)

// Event case class: read from orders.events, {"type":"OrderCreated", ...fields}.
@JsonIgnoreProperties(ignoreUnknown = true)
case class OrderCreatedEvent(orderId: String, product: String, quantity: Int)

// The read model the orders projection keeps in the store `orders`.
@JsonIgnoreProperties(ignoreUnknown = true)
case class OrderReadModel(orderId: String, product: String, quantity: Int, status: String)

// A rejection, as kcqrs writes it to orders.rejections.
@JsonIgnoreProperties(ignoreUnknown = true)
case class CommandRejected(commandId: String, code: String, reason: String)
