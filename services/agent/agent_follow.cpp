// READ_FILE with "follow": a RecordIO stream of a sandbox file's new bytes,
// as `tail -f` over HTTP. The agent keeps the followers; every
// follow_poll_ms one job on the blocking pool reads what each one has not
// yet been sent (at most follow_tick_bytes_max each) and writes it to its
// stream (thread-safe); the agent then records the new offsets. A stream
// ends once its task has ended and everything was sent (the task's
// processes wrote their last byte before its terminal update), when its
// file cannot be read any more, or when the client goes away (evicted
// streams included).

#include "services/agent/agent.hpp"

#include "services/agent/agent_http.hpp"
#include "services/agent/base64.hpp"
#include "services/http/recordio.hpp"

#include <nlohmann/json.hpp>

namespace tessera {

struct Agent::FollowStep {
  uint64_t offset = 0;
  bool done = false;  // the stream is closed: forget the follower
};

namespace {

// One follower's poll, on the blocking pool: copies, never the agent's own.
struct FollowJob {
  uint64_t id = 0;
  std::string sandbox;
  std::string path;
  uint64_t offset = 0;
  std::shared_ptr<http::Stream> stream;
  bool ended = false;  // the task has ended: close once caught up
};

// A piece of the file per read; the last one of a poll may be shorter.
constexpr uint64_t follow_chunk_bytes = uint64_t{256} << 10;

std::string data_record(const std::string& data, uint64_t offset) {
  nlohmann::json record = {{"type", "DATA"}, {"data", base64_encode(data)}, {"offset", offset}};
  return http::recordio_frame(record.dump());
}

bool finish(const FollowJob& job) {
  job.stream->close();
  return true;
}

// Sends what the file holds past job.offset; returns the next offset and
// whether the stream is over.
std::pair<uint64_t, bool> pump(const FollowJob& job) {
  uint64_t offset = job.offset;
  uint64_t sent = 0;
  while (sent < follow_tick_bytes_max) {
    auto length = std::min(follow_chunk_bytes, follow_tick_bytes_max - sent);
    SandboxFileError why = SandboxFileError::none;
    auto chunk = read_sandbox_file(job.sandbox, job.path, offset, length, &why);
    if (!chunk)
      return {offset, finish(job)};  // removed, or swapped for what may not be read
    if (chunk->data.empty())
      break;
    if (!job.stream->write(data_record(chunk->data, offset)))
      return {offset, true};  // the client went away, or was evicted
    offset += chunk->data.size();
    sent += chunk->data.size();
    if (chunk->data.size() < length)
      break;
  }
  if (job.ended && sent < follow_tick_bytes_max)
    return {offset, finish(job)};
  return {offset, false};
}

}  // namespace

void Agent::api_follow(const SandboxFollow& follow, const http::Responder& responder,
                       const SandboxAccess& access) {
  auto key = api_task(follow.framework_id, follow.task_id,
                      [&responder](http::Response r) { responder.respond(std::move(r)); });
  if (!key || (access && !access(framework_roles(key->first))))
    return;
  if (followers_.size() + follow_pending_ >= config_.followers_max)
    return responder.respond(http::error_response(
        503,
        "too many followers (" + std::to_string(config_.followers_max) + "); try again later"));
  Follower f{*key, sandbox_of(*key)->string(), follow.path, 0, nullptr, false};
  ++follow_pending_;
  int64_t start = follow.offset;
  // The file is checked before the stream opens, so a refused path gets
  // its status (403, 404, ...), not an empty stream.
  bool queued = blocking([this, f, start, responder]() mutable -> std::function<void()> {
    SandboxFileError why = SandboxFileError::none;
    auto size = sandbox_file_size(f.sandbox, f.path, &why);
    if (!size) {
      responder.respond(sandbox_error_response(size.error(), why));
      return [this] { --follow_pending_; };
    }
    f.offset = start < 0 ? *size : uint64_t(start);
    f.stream = responder.open_stream(200, "application/recordio",
                                     {{"Message-Content-Type", "application/json"}});
    return [this, f = std::move(f)]() mutable {
      --follow_pending_;
      start_follower(std::move(f));
    };
  });
  if (!queued) {
    --follow_pending_;
    responder.respond(http::error_response(503, "the agent is busy; try again"));
  }
}

void Agent::start_follower(Follower f) {
  if (shutting_down_ || f.stream->closed())
    return f.stream->close();
  followers_.emplace(next_follower_++, std::move(f));
  arm_follow_timer();
}

void Agent::arm_follow_timer() {
  if (follow_timer_ != 0 || followers_.empty())
    return;
  follow_timer_ = after(config_.follow_poll_ms, [this] {
    follow_timer_ = 0;
    follow_tick();
  });
}

void Agent::follow_tick() {
  std::vector<FollowJob> jobs;
  for (auto it = followers_.begin(); it != followers_.end();) {
    auto& f = it->second;
    if (f.stream->closed()) {
      it = followers_.erase(it);
      continue;
    }
    if (!f.busy) {
      f.busy = true;
      jobs.push_back({it->first, f.sandbox, f.path, f.offset, f.stream, task_ended(f.task)});
    }
    ++it;
  }
  if (!jobs.empty()) {
    bool queued = blocking([this, jobs]() -> std::function<void()> {
      std::vector<std::pair<uint64_t, FollowStep>> steps;
      for (const auto& job : jobs) {
        auto [offset, done] = pump(job);
        steps.push_back({job.id, FollowStep{offset, done}});
      }
      return [this, steps = std::move(steps)] { followed(steps); };
    });
    if (!queued)  // the pool is full: the next poll tries again
      for (const auto& job : jobs)
        followers_.at(job.id).busy = false;
  }
  arm_follow_timer();
}

void Agent::followed(const std::vector<std::pair<uint64_t, FollowStep>>& steps) {
  for (const auto& [id, step] : steps) {
    auto it = followers_.find(id);
    if (it == followers_.end())
      continue;
    if (step.done) {
      followers_.erase(it);
      continue;
    }
    it->second.busy = false;
    it->second.offset = step.offset;
  }
}

void Agent::close_followers() {
  for (auto& [id, f] : followers_)
    f.stream->close();
  followers_.clear();
  cancel(follow_timer_);
  follow_timer_ = 0;
}

}  // namespace tessera
