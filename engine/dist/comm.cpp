#include "engine/dist/comm.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <thread>

#include <fmt/format.h>

#ifdef WN_HAVE_MPI
#include <mpi.h>
#endif
#ifdef WN_HAVE_NCCL
#include "engine/dist/nccl.h"
#endif

namespace wn::dist {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The timeout of every collective: WNGAN_DIST_TIMEOUT seconds, else 600.
double default_timeout() {
  const char* s = std::getenv("WNGAN_DIST_TIMEOUT");
  if (!s || !*s) return 600;
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  if (*end != '\0' || !(v > 0))
    throw std::invalid_argument(fmt::format("WNGAN_DIST_TIMEOUT='{}': expected a number of seconds > 0", s));
  return v;
}

// A tensor's elements as a host buffer, or the reverse (other devices via the host).
void to_host(const Tensor& t, void* dst) {
  if (t.device() == kCPU) {
    std::memcpy(dst, t.raw(), t.nbytes());
  } else {
    Tensor h = t.to(kCPU);
    std::memcpy(dst, h.raw(), h.nbytes());
  }
}
void from_host(const Tensor& t, const void* src) {
  if (t.device() == kCPU) {
    std::memcpy(t.raw(), src, t.nbytes());
  } else {
    Tensor h = Tensor::empty(t.shape(), t.dtype(), kCPU);
    std::memcpy(h.raw(), src, h.nbytes());
    Tensor(t).copy_from(h.to(t.device()));
  }
}

// The bytes of a list of tensors of one dtype (float32, or float64 for gradient checks);
// an undefined tensor or a mix of dtypes is an error naming the tensor.
size_t total_bytes(const std::vector<Tensor>& ts, const char* what) {
  size_t n = 0;
  for (size_t i = 0; i < ts.size(); ++i) {
    if (!ts[i].defined()) throw std::invalid_argument(fmt::format("{}: tensor {} of {} is undefined", what, i, ts.size()));
    if (ts[i].dtype() != ts[0].dtype())
      throw std::invalid_argument(fmt::format("{}: tensor {} is {}, tensor 0 {}: one dtype per call", what, i,
                                              ts[i].describe(), ts[0].describe()));
    n += ts[i].nbytes();
  }
  return n;
}

}  // namespace

#ifdef WN_HAVE_MPI

namespace {
constexpr int kFailTag = 7701, kAckTag = 7702, kGatherTag = 7703;
bool g_started = false;  // MPI_Init ran
}  // namespace

struct Comm::Impl {
  MPI_Comm comm = MPI_COMM_NULL, fail = MPI_COMM_NULL;  // collectives; failure notices
  int world_rank = 0;
  bool broken = false;
  std::string broken_why;
  std::vector<int> failed;                     // ranks whose failure this rank saw
  std::vector<std::shared_ptr<void>> kept;     // buffers of collectives that never completed
#ifdef WN_HAVE_NCCL
  std::unique_ptr<NcclComm> nccl;  // CUDA tensors' sums, made at the first one
  int nccl_agreed = -1;            // every rank can use NCCL: -1 not asked yet, 0 no, 1 yes
  // Whether CUDA sums go through NCCL: asked once, of every rank together (the first CUDA
  // all_reduce_sum is collective), so that no rank takes NCCL while another takes MPI.
  bool use_nccl(Comm& self) {
    if (nccl_agreed < 0) {
      std::string why;
      std::vector<double> missing = {NcclComm::available(&why) ? 0.0 : 1.0};
      self.all_reduce_sum(missing);
      nccl_agreed = missing[0] == 0 ? 1 : 0;
      if (!nccl_agreed && !why.empty())
        std::fprintf(stderr, "wngan: rank %d: NCCL not usable (%s): CUDA sums go through the host over MPI\n",
                     world_rank, why.c_str());
      else if (!nccl_agreed && self.rank() == 0)
        std::fprintf(stderr, "wngan: NCCL is not usable on every rank: CUDA sums go through the host over MPI\n");
    }
    return nccl_agreed == 1;
  }
#endif

  void check_usable(const char* what) const {
    if (broken) throw DistError(fmt::format("{}: the communicator is unusable ({})", what, broken_why));
  }
  // Throws RankFailed when another rank announced its failure.
  void check_notices(int rank_of_this) {
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe(MPI_ANY_SOURCE, kFailTag, fail, &flag, &st);
    if (!flag) return;
    int len = 0;
    MPI_Get_count(&st, MPI_CHAR, &len);
    std::string msg(size_t(std::max(len, 0)), '\0');
    MPI_Recv(msg.data(), len, MPI_CHAR, st.MPI_SOURCE, kFailTag, fail, MPI_STATUS_IGNORE);
    failed.push_back(st.MPI_SOURCE);
    broken = true;
    broken_why = msg;
    (void)rank_of_this;
    throw RankFailed(st.MPI_SOURCE, msg);
  }
  // Waits until done() holds, bounded by timeout, watching for failure notices. On failure
  // the buffer is kept alive (MPI may still write into it) and the communicator is broken.
  void wait_until(const std::function<bool()>& done, const char* what, double timeout, int rank,
                  const std::shared_ptr<void>& keep) {
    const auto t0 = Clock::now();
    for (int spins = 0;; ++spins) {
      try {
        if (done()) return;
        if (spins % 32 == 0) check_notices(rank);
      } catch (...) {
        kept.push_back(keep);
        broken = true;
        if (broken_why.empty()) broken_why = fmt::format("{} failed", what);
        throw;
      }
      const double s = seconds_since(t0);
      if (s > timeout) {
        kept.push_back(keep);
        broken = true;
        broken_why = fmt::format("{} timed out", what);
        throw DistError(fmt::format("{}: rank {} waited {:.0f} s for the other ranks without an answer "
                                    "(WNGAN_DIST_TIMEOUT sets the limit)",
                                    what, world_rank, s));
      }
      // Spin while a partner is about to arrive, then let other processes have the core.
      if (s > 0.002) std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }
  // Waits for an MPI request (as wait_until).
  void wait(MPI_Request& req, const char* what, double timeout, int rank, const std::shared_ptr<void>& keep) {
    wait_until(
        [&req] {
          int done = 0;
          MPI_Test(&req, &done, MPI_STATUS_IGNORE);
          return done != 0;
        },
        what, timeout, rank, keep);
  }
};

namespace {
// A communicator's ranks, and the rank on this machine.
std::unique_ptr<Comm> make_comm(MPI_Comm c, int world_rank, int local_rank) {
  auto impl = std::make_unique<Comm::Impl>();
  impl->comm = c;
  MPI_Comm_dup(c, &impl->fail);
  impl->world_rank = world_rank;
  auto comm = std::make_unique<Comm>(std::move(impl));
  (void)local_rank;
  return comm;
}
int g_local_rank = 0;
}  // namespace

Comm::Comm(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  timeout_s = default_timeout();
  if (impl_->comm == MPI_COMM_NULL) return;  // one process, MPI not started
  MPI_Comm_rank(impl_->comm, &rank_);
  MPI_Comm_size(impl_->comm, &size_);
  world_rank_ = impl_->world_rank;
  local_rank_ = g_local_rank;
}

Comm::~Comm() = default;

namespace {
// Packs tensors into one host buffer, or unpacks it.
void pack(const std::vector<Tensor>& ts, std::vector<char>& buf) {
  size_t off = 0;
  for (const Tensor& t : ts) {
    to_host(t, buf.data() + off);
    off += t.nbytes();
  }
}
void unpack(const std::vector<Tensor>& ts, const std::vector<char>& buf) {
  size_t off = 0;
  for (const Tensor& t : ts) {
    from_host(t, buf.data() + off);
    off += t.nbytes();
  }
}
// The MPI type and count of a packed buffer.
std::pair<MPI_Datatype, int> mpi_elements(const std::vector<Tensor>& ts, size_t bytes, const char* what) {
  const bool f64 = ts[0].dtype() == DType::F64;
  if (!f64 && ts[0].dtype() != DType::F32)
    throw std::invalid_argument(fmt::format("{}: float32 or float64 tensors only ({})", what, ts[0].describe()));
  const size_t n = bytes / (f64 ? 8 : 4);
  if (n > size_t(INT32_MAX)) throw std::invalid_argument(fmt::format("{}: {} elements is too many", what, n));
  return {f64 ? MPI_DOUBLE : MPI_FLOAT, int(n)};
}
}  // namespace

void Comm::all_reduce_sum(const std::vector<Tensor>& ts) {
  const size_t bytes = total_bytes(ts, "all_reduce_sum");
  if (size_ == 1 || bytes == 0) return;
  impl_->check_usable("all_reduce_sum");
#ifdef WN_HAVE_NCCL
  if (ts[0].device().type == DeviceType::CUDA && impl_->use_nccl(*this)) {
    const WaitFn wait = [this](const char* what, const std::function<bool()>& done) {
      impl_->wait_until(done, what, timeout_s, rank_, nullptr);
    };
    try {
      if (!impl_->nccl)
        impl_->nccl = std::make_unique<NcclComm>(
            rank_, size_, ts[0].device().index, [this](std::string& id) { broadcast(id, 0); }, timeout_s);
      impl_->nccl->all_reduce_sum(ts, bytes, wait);
    } catch (const std::exception& e) {
      impl_->broken = true;
      if (impl_->broken_why.empty()) impl_->broken_why = e.what();
      throw;
    }
    return;
  }
#endif
  const auto [type, n] = mpi_elements(ts, bytes, "all_reduce_sum");
  auto buf = std::make_shared<std::vector<char>>(bytes);
  pack(ts, *buf);
  MPI_Request req;
  MPI_Iallreduce(MPI_IN_PLACE, buf->data(), n, type, MPI_SUM, impl_->comm, &req);
  impl_->wait(req, "all_reduce_sum", timeout_s, rank_, buf);
  unpack(ts, *buf);
}

void Comm::all_reduce_sum(std::vector<double>& v) {
  if (size_ == 1 || v.empty()) return;
  impl_->check_usable("all_reduce_sum");
  auto buf = std::make_shared<std::vector<double>>(v);
  MPI_Request req;
  MPI_Iallreduce(MPI_IN_PLACE, buf->data(), int(buf->size()), MPI_DOUBLE, MPI_SUM, impl_->comm, &req);
  impl_->wait(req, "all_reduce_sum", timeout_s, rank_, buf);
  v = *buf;
}

void Comm::broadcast(const std::vector<Tensor>& ts, int root) {
  const size_t bytes = total_bytes(ts, "broadcast");
  if (size_ == 1 || bytes == 0) return;
  impl_->check_usable("broadcast");
  const auto [type, n] = mpi_elements(ts, bytes, "broadcast");
  auto buf = std::make_shared<std::vector<char>>(bytes);
  if (rank_ == root) pack(ts, *buf);
  MPI_Request req;
  MPI_Ibcast(buf->data(), n, type, root, impl_->comm, &req);
  impl_->wait(req, "broadcast", timeout_s, rank_, buf);
  if (rank_ != root) unpack(ts, *buf);
}

void Comm::broadcast(std::string& text, int root) {
  if (size_ == 1) return;
  impl_->check_usable("broadcast");
  auto len = std::make_shared<int64_t>(int64_t(text.size()));
  MPI_Request req;
  MPI_Ibcast(len.get(), 1, MPI_INT64_T, root, impl_->comm, &req);
  impl_->wait(req, "broadcast", timeout_s, rank_, len);
  auto buf = std::make_shared<std::string>(rank_ == root ? text : std::string(size_t(*len), '\0'));
  MPI_Ibcast(buf->data(), int(*len), MPI_CHAR, root, impl_->comm, &req);
  impl_->wait(req, "broadcast", timeout_s, rank_, buf);
  text = *buf;
}

std::vector<std::string> Comm::gather(const std::string& text, int root) {
  if (size_ == 1) return {text};
  impl_->check_usable("gather");
  auto lens = std::make_shared<std::vector<int>>(size_t(size_) + 1);
  (*lens)[size_t(size_)] = int(text.size());
  MPI_Request req;
  MPI_Igather(&(*lens)[size_t(size_)], 1, MPI_INT, lens->data(), 1, MPI_INT, root, impl_->comm, &req);
  impl_->wait(req, "gather", timeout_s, rank_, lens);
  // Everything MPI may still touch lives as long as the request (kept on a failure).
  struct Buffers {
    std::string mine, all;
    std::vector<int> lens, displs;
  };
  auto b = std::make_shared<Buffers>();
  b->mine = text;
  b->lens = *lens;
  b->displs.assign(size_t(size_), 0);
  int total = 0;
  if (rank_ == root)
    for (int r = 0; r < size_; ++r) b->displs[size_t(r)] = total, total += b->lens[size_t(r)];
  b->all.assign(size_t(total), '\0');
  MPI_Igatherv(b->mine.data(), int(b->mine.size()), MPI_CHAR, b->all.data(), b->lens.data(), b->displs.data(), MPI_CHAR,
               root, impl_->comm, &req);
  impl_->wait(req, "gather", timeout_s, rank_, b);
  std::vector<std::string> out;
  if (rank_ == root)
    for (int r = 0; r < size_; ++r) out.push_back(b->all.substr(size_t(b->displs[size_t(r)]), size_t(b->lens[size_t(r)])));
  return out;
}

std::vector<std::string> Comm::gather_within(const std::string& text, double limit, const std::string& what, int root) {
  if (size_ == 1) return {text};
  impl_->check_usable(what.c_str());
  if (rank_ != root) {
    auto buf = std::make_shared<std::string>(text);
    MPI_Request req;
    MPI_Isend(buf->data(), int(buf->size()), MPI_CHAR, root, kGatherTag, impl_->comm, &req);
    impl_->wait(req, what.c_str(), limit, rank_, buf);
    return {};
  }
  std::vector<std::string> out(static_cast<size_t>(size_));
  std::vector<bool> got(static_cast<size_t>(size_), false);
  out[size_t(root)] = text;
  got[size_t(root)] = true;
  int left = size_ - 1;
  const auto t0 = Clock::now();
  for (int spins = 0; left > 0; ++spins) {
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe(MPI_ANY_SOURCE, kGatherTag, impl_->comm, &flag, &st);
    if (flag) {
      int len = 0;
      MPI_Get_count(&st, MPI_CHAR, &len);
      std::string& dst = out[size_t(st.MPI_SOURCE)];
      dst.assign(size_t(std::max(len, 0)), '\0');
      MPI_Recv(dst.data(), len, MPI_CHAR, st.MPI_SOURCE, kGatherTag, impl_->comm, MPI_STATUS_IGNORE);
      if (!got[size_t(st.MPI_SOURCE)]) --left;
      got[size_t(st.MPI_SOURCE)] = true;
      continue;
    }
    if (spins % 32 == 0) impl_->check_notices(rank_);
    const double s = seconds_since(t0);
    if (s > limit) {
      std::string missing;
      for (int r = 0; r < size_; ++r)
        if (!got[size_t(r)]) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
      throw DistError(fmt::format("{}: rank{} {} did not report within {:g} s", what, left > 1 ? "s" : "", missing,
                                  limit));
    }
    if (s > 0.002) std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  return out;
}

void Comm::barrier() {
  if (size_ == 1) return;
  impl_->check_usable("barrier");
  MPI_Request req;
  MPI_Ibarrier(impl_->comm, &req);
  impl_->wait(req, "barrier", timeout_s, rank_, nullptr);
}

void Comm::announce_failure(const std::string& what) {
  if (size_ == 1) return;
  auto msg = std::make_shared<std::string>(what);
  std::vector<MPI_Request> reqs;
  for (int r = 0; r < size_; ++r) {
    if (r == rank_) continue;
    reqs.emplace_back();
    MPI_Isend(msg->data(), int(msg->size()), MPI_CHAR, r, kFailTag, impl_->fail, &reqs.back());
  }
  impl_->kept.push_back(msg);
  impl_->broken = true;
  impl_->broken_why = "this rank failed: " + what;
  // Bounded: a rank busy elsewhere sees the notice at its next collective, or never.
  const auto t0 = Clock::now();
  int acks = 0;
  while (acks < size_ - 1 && seconds_since(t0) < std::min(timeout_s, 20.0)) {
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe(MPI_ANY_SOURCE, kAckTag, impl_->fail, &flag, &st);
    if (flag) {
      int dummy = 0;
      MPI_Recv(&dummy, 1, MPI_INT, st.MPI_SOURCE, kAckTag, impl_->fail, MPI_STATUS_IGNORE);
      ++acks;
      continue;
    }
    // A rank that failed too will not acknowledge: its own notice answers for it.
    MPI_Iprobe(MPI_ANY_SOURCE, kFailTag, impl_->fail, &flag, &st);
    if (flag) {
      int len = 0;
      MPI_Get_count(&st, MPI_CHAR, &len);
      std::string other(size_t(std::max(len, 0)), '\0');
      MPI_Recv(other.data(), len, MPI_CHAR, st.MPI_SOURCE, kFailTag, impl_->fail, MPI_STATUS_IGNORE);
      ++acks;
      continue;
    }
    int done = 0;
    MPI_Testall(int(reqs.size()), reqs.data(), &done, MPI_STATUSES_IGNORE);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void Comm::acknowledge_failure() {
  for (int r : impl_->failed) {
    int one = 1;
    MPI_Send(&one, 1, MPI_INT, r, kAckTag, impl_->fail);
  }
  impl_->failed.clear();
}

std::unique_ptr<Comm> Comm::split(int color) {
  if (impl_->comm == MPI_COMM_NULL) return std::make_unique<Comm>(std::make_unique<Impl>());
  barrier();  // bounded: every rank is here before the unbounded split
  MPI_Comm c;
  MPI_Comm_split(impl_->comm, color, rank_, &c);
  return make_comm(c, world_rank_, local_rank_);
}

std::unique_ptr<Comm> Comm::dup() {
  if (impl_->comm == MPI_COMM_NULL) return std::make_unique<Comm>(std::make_unique<Impl>());
  // Only for a communicator without pending collectives (a study's group, not a run's).
  MPI_Comm c;
  MPI_Comm_dup(impl_->comm, &c);
  return make_comm(c, world_rank_, local_rank_);
}

std::string Comm::reduce_path(Device device) const {
  if (size_ == 1) return "none (one rank)";
  if (device.type != DeviceType::CUDA) return "MPI";
#ifdef WN_HAVE_NCCL
  std::string why;
  if (NcclComm::available(&why)) return NcclComm::version() + ", GPU to GPU";
  return "MPI through the host (NCCL: " + why + ")";
#else
  return "MPI through the host (this build has no NCCL)";
#endif
}

namespace {
std::unique_ptr<Comm> g_world;
}  // namespace

void init(int* argc, char*** argv) {
  if (g_started) return;
  bool launched = false;
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(v)) launched = true;
  if (!launched) return;
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  g_started = true;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
  int wr = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &wr);
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, wr, MPI_INFO_NULL, &local);
  MPI_Comm_rank(local, &g_local_rank);
  MPI_Comm_free(&local);
  MPI_Comm w;
  MPI_Comm_dup(MPI_COMM_WORLD, &w);
  g_world = make_comm(w, wr, g_local_rank);
}

Comm& world() {
  if (!g_world) {
    // One rank: the communicator's collectives return at once (size 1).
    g_world = std::make_unique<Comm>(std::make_unique<Comm::Impl>());
  }
  return *g_world;
}

void finalize() {
  if (!g_started) return;
  g_world.reset();
  MPI_Finalize();
  g_started = false;
}

bool built_with_mpi() { return true; }
bool active() { return g_started; }

#else  // one process

struct Comm::Impl {};

Comm::Comm(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) { timeout_s = default_timeout(); }
Comm::~Comm() = default;
void Comm::all_reduce_sum(const std::vector<Tensor>& ts) { total_bytes(ts, "all_reduce_sum"); }
void Comm::all_reduce_sum(std::vector<double>&) {}
void Comm::broadcast(const std::vector<Tensor>& ts, int) { total_bytes(ts, "broadcast"); }
void Comm::broadcast(std::string&, int) {}
std::vector<std::string> Comm::gather(const std::string& text, int) { return {text}; }
std::vector<std::string> Comm::gather_within(const std::string& text, double, const std::string&, int) { return {text}; }
void Comm::barrier() {}
void Comm::announce_failure(const std::string&) {}
void Comm::acknowledge_failure() {}
std::unique_ptr<Comm> Comm::split(int) { return std::make_unique<Comm>(std::make_unique<Impl>()); }
std::unique_ptr<Comm> Comm::dup() { return std::make_unique<Comm>(std::make_unique<Impl>()); }
std::string Comm::reduce_path(Device) const { return "none (one rank)"; }

namespace {
std::unique_ptr<Comm> g_world;
}  // namespace

void init(int*, char***) {}
Comm& world() {
  if (!g_world) g_world = std::make_unique<Comm>(std::make_unique<Comm::Impl>());
  return *g_world;
}
void finalize() {}
bool built_with_mpi() { return false; }
bool active() { return false; }

#endif

std::unique_ptr<Comm> Comm::self() { return std::make_unique<Comm>(std::make_unique<Impl>()); }

void abandon(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(code);
}

}  // namespace wn::dist
