#include "kcqrs/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace kcqrs {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(StatusTest, CarriesCodeAndMessage) {
  Status s = Status::InvalidArgument("quantity must be > 0");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_EQ(s.ToString(), "InvalidArgument: quantity must be > 0");
}

TEST(StatusTest, WithContextPrefixesTheMessageAndKeepsTheCode) {
  Status s = Status::Unavailable("broker down").WithContext("orders-0");
  EXPECT_TRUE(s.IsUnavailable());
  EXPECT_EQ(s.message(), "orders-0: broker down");
  EXPECT_TRUE(Status::OK().WithContext("ignored").ok());
}

Status FailIfNegative(int n) {
  if (n < 0) return Status::InvalidArgument("negative");
  return Status::OK();
}

Status Chain(int n) {
  KCQRS_RETURN_IF_ERROR(FailIfNegative(n));
  return Status::NotFound("reached the end");
}

TEST(StatusTest, ReturnIfErrorStopsAtTheFirstError) {
  EXPECT_TRUE(Chain(-1).IsInvalidArgument());
  EXPECT_TRUE(Chain(1).IsNotFound());
}

TEST(ResultTest, HoldsAValueOrAnError) {
  Result<std::string> good(std::string("o-1"));
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, "o-1");
  EXPECT_TRUE(good.status().ok());

  Result<std::string> bad(Status::NotFound("o-2"));
  EXPECT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsNotFound());
}

TEST(ResultTest, MovesOutMoveOnlyValues) {
  Result<std::unique_ptr<int>> r(std::make_unique<int>(7));
  std::unique_ptr<int> p = std::move(r).value();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 7);
}

}  // namespace
}  // namespace kcqrs
