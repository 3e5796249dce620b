// Intrusive, single-threaded reference counting for objects shared on the broker thread (messages
// shared by every queue they are routed to, queues referenced by unacked deliveries). Non-atomic:
// all owners live on the broker's io thread.
#pragma once

#include <cstdint>
#include <utility>

namespace warren::broker {

template <class T>
class Ref {
 public:
  Ref() = default;
  // Adopts p, taking a new reference (p's count is incremented).
  explicit Ref(T* p) : p_(p) {
    if (p_) ++p_->refs_;
  }
  Ref(const Ref& o) : Ref(o.p_) {}
  Ref(Ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  Ref& operator=(Ref o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~Ref() { reset(); }

  void reset() {
    if (p_ && --p_->refs_ == 0) T::destroy(p_);
    p_ = nullptr;
  }
  T* get() const { return p_; }
  T* operator->() const { return p_; }
  T& operator*() const { return *p_; }
  explicit operator bool() const { return p_ != nullptr; }
  bool operator==(const Ref& o) const { return p_ == o.p_; }

 private:
  T* p_ = nullptr;
};

}  // namespace warren::broker
