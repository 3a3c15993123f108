#pragma once
// ActorHandle<T>: how another thread (an HTTP edge's I/O thread) reaches an
// actor that serves requests. The actor attaches its inbox when it starts and
// detaches when it stops; post() runs a function on the actor's thread, or
// says no (not running, or its inbox full). serve_http() turns a handle into
// an http::Handler for any server: each request is posted to T::serve, and
// answered 503 when it cannot be.
//
// Thread-safety: every member may be called from any thread.

#include "runtime/inbox.hpp"
#include "services/http/server.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace tessera {

template <class T>
class ActorHandle {
 public:
  // Runs fn on the actor's thread; false when it is not running or its
  // inbox is full.
  bool post(std::function<void(T&)> fn) {
    std::lock_guard<std::mutex> guard(mu_);
    if (!inbox_ || !actor_)
      return false;
    auto* actor = actor_;
    return inbox_->post([actor, fn = std::move(fn)] { fn(*actor); });
  }
  void attach(std::shared_ptr<Inbox> inbox, T* actor) {
    {
      std::lock_guard<std::mutex> guard(mu_);
      inbox_ = std::move(inbox);
      actor_ = actor;
    }
    attached_.notify_all();
  }
  void detach() {
    std::lock_guard<std::mutex> guard(mu_);
    inbox_.reset();
    actor_ = nullptr;
  }
  // Waits until the actor has attached (it runs); false after timeout.
  bool wait_attached(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return attached_.wait_for(lock, timeout, [this] { return actor_ != nullptr; });
  }

 private:
  std::mutex mu_;
  std::condition_variable attached_;
  std::shared_ptr<Inbox> inbox_;
  T* actor_ = nullptr;
};

// Each request runs T::serve(request, responder) on the actor's thread;
// when it cannot be posted: 503 {"message": "the WHAT is not running or is
// overloaded"}.
template <class T>
http::Handler serve_http(std::shared_ptr<ActorHandle<T>> handle, std::string what) {
  return [handle, what = std::move(what)](http::Request request, http::Responder responder) {
    auto shared = std::make_shared<http::Request>(std::move(request));
    bool posted = handle->post([shared, responder](T& actor) { actor.serve(*shared, responder); });
    if (!posted)
      responder.respond(http::json_response(
          503,
          nlohmann::json{{"message", "the " + what + " is not running or is overloaded"}}.dump()));
  };
}

}  // namespace tessera
