// The handles applications answer with (Responder, Stream) and their shared
// halves. Everything here may run on any thread; it reaches a connection only
// by posting to the I/O thread through the server's Gate.

#include "services/http/connection.hpp"

#include "runtime/log.hpp"

namespace tessera::http::detail {

namespace {

void run_callback(const std::function<void()>& fn) {
  static std::atomic<bool> warned{false};
  try {
    fn();
  } catch (const std::exception& e) {
    if (!warned.exchange(true))
      log().error("http: a stream's on_close callback threw: {} (logged once)", e.what());
  }
}

}  // namespace

StreamState::StreamState(std::weak_ptr<Connection> connection, std::shared_ptr<Gate> gate,
                         size_t unsent_bytes_max)
    : connection_(std::move(connection)),
      gate_(std::move(gate)),
      unsent_bytes_max_(unsent_bytes_max) {
}

bool StreamState::write(std::string chunk) {
  bool pump = false;
  bool evicted = false;
  {
    std::lock_guard lock(mu_);
    if (closed_)
      return false;
    if (chunk.empty())
      return true;  // an empty chunk would end the body: there is nothing to send
    if (unsent_bytes_ > 0 && unsent_bytes_ + chunk.size() > unsent_bytes_max_) {
      // A subscriber this far behind is not coming back: drop it rather
      // than buffer without bound. A chunk into an empty buffer is always
      // taken (a SUBSCRIBED snapshot of a big cluster is one record larger
      // than the limit): the bound is the limit plus one chunk.
      closed_ = true;
      evicted = true;
      queue_.clear();
    } else {
      unsent_bytes_ += chunk.size();
      queue_.push_back(std::move(chunk));
      pump = !pump_pending_;
      pump_pending_ = true;
    }
  }
  if (evicted)
    post_evict();
  if (pump)
    post_pump();
  return !evicted;
}

void StreamState::close() {
  bool pump = false;
  {
    std::lock_guard lock(mu_);
    if (closed_)
      return;
    closed_ = true;
    end_requested_ = true;
    pump = !pump_pending_;
    pump_pending_ = true;
  }
  if (pump)
    post_pump();
}

bool StreamState::closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}

void StreamState::on_close(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    if (!finished_) {
      on_close_.push_back(std::move(fn));
      return;
    }
  }
  run_callback(fn);
}

bool StreamState::drain(std::vector<std::string>& out) {
  std::lock_guard lock(mu_);
  out.swap(queue_);
  pump_pending_ = false;
  return end_requested_;
}

void StreamState::sent(size_t bytes) {
  std::lock_guard lock(mu_);
  unsent_bytes_ -= std::min(bytes, unsent_bytes_);
}

void StreamState::finish() {
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard lock(mu_);
    if (finished_)
      return;
    finished_ = true;
    closed_ = true;
    queue_.clear();
    callbacks.swap(on_close_);
  }
  for (const auto& fn : callbacks)
    run_callback(fn);
}

void StreamState::post_pump() {
  if (gate_ == nullptr)
    return;
  gate_->post([connection = connection_, self = shared_from_this()] {
    if (auto c = connection.lock())
      c->pump_stream(self.get());
  });
}

void StreamState::post_evict() {
  if (gate_ == nullptr)
    return;
  gate_->post([connection = connection_, self = shared_from_this()] {
    if (auto c = connection.lock())
      c->evict_stream(self.get());
  });
}

ResponderState::~ResponderState() {
  if (answered.load())
    return;
  if (sink) {
    sink(error_response(500, "no response"));
    return;
  }
  gate->post([connection = connection, seq = request_seq] {
    if (auto c = connection.lock())
      c->respond(seq, error_response(500, "no response"));
  });
}

Responder sink_responder(std::function<void(Response)> sink) {
  auto state = std::make_shared<ResponderState>();
  state->sink = std::move(sink);
  return Responder(std::move(state));
}

}  // namespace tessera::http::detail

namespace tessera::http {

Responder::Responder(std::shared_ptr<detail::ResponderState> state) : state_(std::move(state)) {
}

void Responder::respond(Response r) const {
  if (!state_ || state_->answered.exchange(true))
    return;
  if (state_->sink) {
    state_->sink(std::move(r));
    return;
  }
  state_->gate->post(
      [connection = state_->connection, seq = state_->request_seq, r = std::move(r)]() mutable {
        if (auto c = connection.lock())
          c->respond(seq, std::move(r));
      });
}

std::shared_ptr<Stream> Responder::open_stream(int status, std::string content_type,
                                               Headers headers) const {
  if (!state_) {
    auto orphan =
        std::make_shared<detail::StreamState>(std::weak_ptr<detail::Connection>{}, nullptr, 0);
    orphan->finish();
    return std::shared_ptr<Stream>(new Stream(std::move(orphan)));
  }
  auto state = std::make_shared<detail::StreamState>(state_->connection, state_->gate,
                                                     state_->stream_buffer_bytes_max);
  auto stream = std::shared_ptr<Stream>(new Stream(state));
  if (state_->answered.exchange(true)) {
    state->finish();  // answered already: this stream never opens
    return stream;
  }
  if (state_->sink) {
    Response head;
    head.status = status;
    head.content_type = std::move(content_type);
    head.headers = std::move(headers);
    state_->sink(std::move(head));
    return stream;
  }
  bool posted = state_->gate->post([connection = state_->connection, seq = state_->request_seq,
                                    state, status, content_type = std::move(content_type),
                                    headers = std::move(headers)]() mutable {
    if (auto c = connection.lock())
      c->start_stream(seq, std::move(state), status, std::move(content_type), std::move(headers));
    else
      state->finish();
  });
  if (!posted)
    state->finish();  // the server has stopped
  return stream;
}

bool Responder::answered() const {
  return !state_ || state_->answered.load();
}

Stream::Stream(std::shared_ptr<detail::StreamState> state) : state_(std::move(state)) {
}

Stream::~Stream() {
  state_->close();
}

bool Stream::write(std::string chunk) {
  return state_->write(std::move(chunk));
}

void Stream::close() {
  state_->close();
}

bool Stream::closed() const {
  return state_->closed();
}

void Stream::on_close(std::function<void()> fn) {
  state_->on_close(std::move(fn));
}

}  // namespace tessera::http
