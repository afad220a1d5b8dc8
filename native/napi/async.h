// Runs a prepared job on libuv's thread pool and settles a promise with the output array.
// Every object argument of the call (arrays, packed-weight handles) is referenced until the job
// settles, so none is collected while the worker uses it.
#pragma once
#include <napi.h>

#include <utility>
#include <vector>

namespace qk {
namespace napi {

template <class Job>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, const char* name, Job job, const Napi::CallbackInfo& info, size_t out_index)
      : Napi::AsyncWorker(env, name), job_(std::move(job)), deferred_(Napi::Promise::Deferred::New(env)) {
    for (size_t i = 0; i < info.Length(); ++i)
      if (info[i].IsObject() || info[i].IsExternal()) refs_.push_back(Napi::Persistent(info[i].As<Napi::Object>()));
    out_ = Napi::Persistent(info[out_index].As<Napi::Object>());
  }
  void Execute() override { job_.run(); }
  void OnOK() override { deferred_.Resolve(out_.Value()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }
  Napi::Promise promise() { return deferred_.Promise(); }

 private:
  Job job_;
  Napi::Promise::Deferred deferred_;
  std::vector<Napi::ObjectReference> refs_;
  Napi::ObjectReference out_;
};

// Queues job and returns its promise; the worker deletes itself when done.
template <class Job>
Napi::Value queue_promise(const Napi::CallbackInfo& info, const char* name, Job job, size_t out_index) {
  auto* w = new PromiseWorker<Job>(info.Env(), name, std::move(job), info, out_index);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

}  // namespace napi
}  // namespace qk
