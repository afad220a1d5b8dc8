// Async native calls: a prepared job runs on libuv's thread pool and settles a promise with its
// output array, while JavaScript goes on.
//
// Nothing the worker thread reads or writes may be memory the caller controls: while the job runs,
// a caller can detach, transfer or shrink an ArrayBuffer, and the objects it passed may carry
// overridden methods (slice, constructor, Symbol.species). So everything is decided here, in C++,
// on the main thread, before the job is queued:
//  - inputs: every array the job reads is copied into memory the job owns (Snapshot), with memcpy,
//    never through a JavaScript method; packed weights are immutable and kept alive by shared_ptr;
//  - output (OutSlot): when the caller passed none, a native block the job writes and that becomes
//    the resolved array's ArrayBuffer (no zeroing, no copy on the main thread); the caller's array
//    itself when it views a SharedArrayBuffer (never detached, never shrunk); otherwise a native
//    scratch buffer, copied into the caller's array on the main thread when the job is done, after
//    checking that the array is still attached and as long (else the promise rejects).
// Sync calls use the same preparation with Snapshot and OutSlot in pass-through mode.
#pragma once
#include <napi.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "args.h"
#include "core/mem.h"
#include "core/threadpool.h"

namespace qk {
namespace napi {

using OwnedBytes = AlignedPtr<uint8_t>;

// 64-byte aligned bytes (at least 64), or throws a JavaScript Error.
inline OwnedBytes owned_bytes(Napi::Env env, size_t bytes) {
  OwnedBytes b = aligned_array<uint8_t>(bytes);
  if (!b) throw Napi::Error::New(env, "quantkit: out of memory allocating " + std::to_string(bytes) + " bytes");
  return b;
}

// The inputs of one call: views of the caller's arrays (sync) or private copies (async).
class Snapshot {
 public:
  explicit Snapshot(bool own) : own_(own) {}
  bool owns() const { return own_; }
  // Where the job reads `v` from (v.length elements of T).
  template <class T>
  const T* take(Napi::Env env, const View& v) {
    if (!own_ || v.data == nullptr) return static_cast<const T*>(v.data);
    const size_t bytes = v.length * sizeof(T);
    OwnedBytes b = owned_bytes(env, bytes);
    if (bytes) std::memcpy(b.get(), v.data, bytes);
    const T* p = reinterpret_cast<const T*>(b.get());
    copies_.push_back(std::move(b));
    return p;
  }

 private:
  bool own_;
  std::vector<OwnedBytes> copies_;
};

// The output of one call. In sync mode: the caller's array, written in place.
class OutSlot {
 public:
  OutSlot() = default;
  OutSlot(OutSlot&&) = default;
  OutSlot& operator=(OutSlot&&) = default;

  // info[i]: the caller's output (a typed array of `type`, `length` elements) or, for async
  // calls only, null / undefined to have one created here.
  static OutSlot at(const Napi::CallbackInfo& info, size_t i, const char* name, napi_typedarray_type type,
                    size_t elem_bytes, size_t length, bool async) {
    Napi::Env env = info.Env();
    OutSlot s;
    s.name_ = name;
    s.length_ = length;
    s.bytes_ = length * elem_bytes;
    if (async && is_nullish(info[i])) {
      if (length != 0 && s.bytes_ / length != elem_bytes)
        range_error(env, std::string("Expected a size that fits in memory for ") + name + " but received " +
                             std::to_string(length) + " elements");
      // Native memory, neither zeroed nor touched here: the job writes every element, and finish()
      // hands the block itself to JavaScript. A 16 MiB result costs the event loop no allocation
      // pass and no copy.
      s.scratch_ = owned_bytes(env, s.bytes_);
      s.write_ = s.scratch_.get();
      s.create_ = type;
      s.created_ = true;
      return s;
    }
    View v = typed_array_of(info, i, name, type);
    expect_length(env, v, length, name);
    s.user_ = v.data;
    s.ref_ = Napi::Persistent(info[i].As<Napi::Object>());
    s.write_ = v.data;
    if (async && s.bytes_ != 0 && !views_shared_memory(env, info[i])) {
      s.scratch_ = owned_bytes(env, s.bytes_);
      s.write_ = s.scratch_.get();
    }
    return s;
  }

  // Where the job writes, and what the caller's own array is (for overlap checks).
  void* data() const { return write_; }
  const void* user_data() const { return user_; }
  size_t bytes() const { return bytes_; }

  // Main thread, after the job: copies the scratch buffer into the caller's array. Returns the
  // array to resolve with, or throws a JavaScript TypeError when it no longer fits.
  Napi::Value finish(Napi::Env env) {
    if (created_) return adopt(env);
    Napi::Object o = ref_.Value();
    if (scratch_) {
      napi_typedarray_type t;
      size_t len = 0;
      void* data = nullptr;
      napi_value ab;
      size_t off = 0;
      napi_get_typedarray_info(env, o, &t, &len, &data, &ab, &off);
      bool detached = false;
      napi_is_detached_arraybuffer(env, ab, &detached);
      if (detached || len != length_ || data == nullptr)
        throw Napi::TypeError::New(env, std::string("Expected opts.") + name_ + " to keep its length " +
                                            std::to_string(length_) + " until the promise settled but received a " +
                                            describe(o) + " (detached or resized meanwhile)");
      std::memcpy(data, scratch_.get(), bytes_);
      scratch_.reset();
    }
    return o;
  }

 private:
  // A view of a SharedArrayBuffer: its memory can be neither detached nor shrunk.
  static bool views_shared_memory(Napi::Env env, napi_value ta) {
    napi_typedarray_type t;
    size_t len = 0, off = 0;
    void* data = nullptr;
    napi_value ab;
    napi_get_typedarray_info(env, ta, &t, &len, &data, &ab, &off);
    bool is_ab = true;
    napi_is_arraybuffer(env, ab, &is_ab);
    return !is_ab;
  }

  // The created output: an ArrayBuffer over the job's block (freed by V8's finalizer), or, where
  // the runtime refuses external buffers (napi_no_external_buffers_allowed, e.g. Electron), a
  // copy into a new one.
  Napi::Value adopt(Napi::Env env) {
    napi_value ab;
    void* block = scratch_.get();
    napi_status st = napi_create_external_arraybuffer(
        env, block, bytes_, [](napi_env, void* data, void*) { AlignedFree()(data); }, nullptr, &ab);
    if (st == napi_ok) {
      (void)scratch_.release();  // V8 owns it now
    } else {
      Napi::ArrayBuffer copy = Napi::ArrayBuffer::New(env, bytes_);
      if (bytes_) std::memcpy(copy.Data(), block, bytes_);
      scratch_.reset();
      ab = copy;
    }
    napi_value ta;
    if (napi_create_typedarray(env, create_, length_, ab, 0, &ta) != napi_ok)
      throw Napi::Error::New(env,
                             std::string("quantkit: could not create ") + typed_array_name(create_) + " for " + name_);
    return Napi::Value(env, ta);
  }

  const char* name_ = "out";
  bool created_ = false;
  napi_typedarray_type create_ = napi_uint8_array;
  size_t length_ = 0, bytes_ = 0;
  Napi::ObjectReference ref_;
  void* write_ = nullptr;
  const void* user_ = nullptr;
  OwnedBytes scratch_;
};

// A job: run() is called on a worker thread (async) or on the main thread (sync); it must only
// touch memory it owns (Snapshot copies, packed weights, the OutSlot's buffer).
template <class Job>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, const char* name, Job job, OutSlot out)
      : Napi::AsyncWorker(env, name),
        job_(std::move(job)),
        out_(std::move(out)),
        deferred_(Napi::Promise::Deferred::New(env)) {}
  void Execute() override {
    BackgroundScope background;  // yield the CPU between tasks: the event loop comes first
    job_.run();
  }
  void OnOK() override {
    Napi::Env env = Env();
    try {
      Napi::Value v = out_.finish(env);
      deferred_.Resolve(v);
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }
  Napi::Promise promise() { return deferred_.Promise(); }

 private:
  Job job_;
  OutSlot out_;
  Napi::Promise::Deferred deferred_;
};

// Queues job and returns its promise; the worker deletes itself when done.
template <class Job>
Napi::Value queue_promise(Napi::Env env, const char* name, Job job, OutSlot out) {
  auto* w = new PromiseWorker<Job>(env, name, std::move(job), std::move(out));
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

}  // namespace napi
}  // namespace qk
