// Either a value or the error that prevented it: the return type of every fallible operation in
// the broker core, the store and the protocol adapters (no exceptions on the data path).
#pragma once

#include <utility>
#include <variant>

namespace warren {

template <class T, class E>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(E e) : v_(std::move(e)) {}
  // From a result with another error type that converts to E (a broker error to a protocol's).
  template <class E2>
    requires(!std::is_same_v<E, E2> && std::is_constructible_v<E, E2&&>)
  Result(Result<T, E2>&& other)
      : v_(other.ok() ? std::variant<T, E>(std::in_place_index<0>, std::move(other.value()))
                      : std::variant<T, E>(std::in_place_index<1>, E(std::move(other.error())))) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  E& error() { return std::get<1>(v_); }
  const E& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, E> v_;
};

}  // namespace warren
