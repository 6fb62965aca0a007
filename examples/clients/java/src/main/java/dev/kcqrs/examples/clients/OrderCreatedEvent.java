package dev.kcqrs.examples.clients;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.Objects;

// Event class representing the result of a command: the article's own, read
// from orders.events, where kcqrs writes {"type":"OrderCreated", ...fields}.
@JsonIgnoreProperties(ignoreUnknown = true)
public class OrderCreatedEvent {
  private final String orderId;
  private final String product;
  private final int quantity;

  @JsonCreator
  public OrderCreatedEvent(@JsonProperty("orderId") String orderId,
                           @JsonProperty("product") String product,
                           @JsonProperty("quantity") int quantity) {
    this.orderId = orderId;
    this.product = product;
    this.quantity = quantity;
  }

  public String getOrderId() {
    return orderId;
  }

  public String getProduct() {
    return product;
  }

  public int getQuantity() {
    return quantity;
  }

  @Override
  public boolean equals(Object o) {
    if (!(o instanceof OrderCreatedEvent)) return false;
    OrderCreatedEvent e = (OrderCreatedEvent) o;
    return orderId.equals(e.orderId) && product.equals(e.product) && quantity == e.quantity;
  }

  @Override
  public int hashCode() {
    return Objects.hash(orderId, product, quantity);
  }

  @Override
  public String toString() {
    return "OrderCreatedEvent{orderId=" + orderId + ", product=" + product + ", quantity="
        + quantity + "}";
  }
}
