// ThreadSanitizer builds only (KCQRS_TSAN, `make test-tsan`): C11 threads
// on top of the pthread calls that TSan intercepts.
//
// Why: Debian's librdkafka is built with C11 threads (thrd_create, mtx_lock,
// cnd_wait, ...). glibc implements those by calling its internal pthread
// functions directly, so neither GCC 12's libtsan nor clang 14's runtime
// sees them: a thread made by thrd_create has no TSan state, and the first
// malloc on it crashes inside TSan's allocator (every test that starts a
// Kafka client died with "SEGV on unknown address 0x000000000c38" in the
// "rdk:mock" or "rdk:main" thread), and librdkafka's mutexes would be
// invisible besides. Every executable of the TSan build links this library
// (CMakeLists.txt), so the dynamic linker binds librdkafka's references to
// these definitions before libc's (tests/tsan.supp: why no suppressions
// are needed with it). glibc's mtx_t, cnd_t, once_flag and
// thrd_t are its pthread types under other names, so the same objects can be
// passed straight through. Only the functions librdkafka imports are here
// (`nm -D librdkafka.so.1 | grep -E ' U (thrd|mtx|cnd|call_once)'`);
// thrd_current is pthread_self in glibc and needs nothing.

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

static_assert(sizeof(mtx_t) == sizeof(pthread_mutex_t));
static_assert(sizeof(cnd_t) == sizeof(pthread_cond_t));
static_assert(sizeof(thrd_t) == sizeof(pthread_t));
static_assert(sizeof(once_flag) == sizeof(pthread_once_t));

namespace {

int FromErrno(int e) {
  switch (e) {
    case 0:
      return thrd_success;
    case ENOMEM:
      return thrd_nomem;
    case EBUSY:
      return thrd_busy;
    case ETIMEDOUT:
      return thrd_timedout;
    default:
      return thrd_error;
  }
}

struct Start {
  thrd_start_t func;
  void* arg;
};

// glibc returns a C11 thread's int result through the pthread exit value.
void* RunC11Thread(void* p) {
  Start start = *static_cast<Start*>(p);
  free(p);
  return reinterpret_cast<void*>(static_cast<intptr_t>(start.func(start.arg)));
}

}  // namespace

extern "C" {

int thrd_create(thrd_t* thr, thrd_start_t func, void* arg) {
  Start* start = static_cast<Start*>(malloc(sizeof(Start)));
  if (start == nullptr) return thrd_nomem;
  *start = Start{func, arg};
  pthread_t t;
  const int e = pthread_create(&t, nullptr, RunC11Thread, start);
  if (e != 0) {
    free(start);
    return FromErrno(e);
  }
  *thr = t;
  return thrd_success;
}

int thrd_join(thrd_t thr, int* res) {
  void* result = nullptr;
  const int e = pthread_join(thr, &result);
  if (e != 0) return FromErrno(e);
  if (res != nullptr)
    *res = static_cast<int>(reinterpret_cast<intptr_t>(result));
  return thrd_success;
}

int mtx_init(mtx_t* mtx, int type) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(&attr, (type & mtx_recursive)
                                       ? PTHREAD_MUTEX_RECURSIVE
                                       : PTHREAD_MUTEX_NORMAL);
  const int e =
      pthread_mutex_init(reinterpret_cast<pthread_mutex_t*>(mtx), &attr);
  pthread_mutexattr_destroy(&attr);
  return FromErrno(e);
}

int mtx_lock(mtx_t* mtx) {
  return FromErrno(pthread_mutex_lock(reinterpret_cast<pthread_mutex_t*>(mtx)));
}

int mtx_unlock(mtx_t* mtx) {
  return FromErrno(
      pthread_mutex_unlock(reinterpret_cast<pthread_mutex_t*>(mtx)));
}

void mtx_destroy(mtx_t* mtx) {
  pthread_mutex_destroy(reinterpret_cast<pthread_mutex_t*>(mtx));
}

int cnd_init(cnd_t* cond) {
  return FromErrno(
      pthread_cond_init(reinterpret_cast<pthread_cond_t*>(cond), nullptr));
}

int cnd_signal(cnd_t* cond) {
  return FromErrno(
      pthread_cond_signal(reinterpret_cast<pthread_cond_t*>(cond)));
}

int cnd_broadcast(cnd_t* cond) {
  return FromErrno(
      pthread_cond_broadcast(reinterpret_cast<pthread_cond_t*>(cond)));
}

int cnd_wait(cnd_t* cond, mtx_t* mtx) {
  return FromErrno(
      pthread_cond_wait(reinterpret_cast<pthread_cond_t*>(cond),
                        reinterpret_cast<pthread_mutex_t*>(mtx)));
}

// C11's time is TIME_UTC, the realtime clock, as pthread's default.
int cnd_timedwait(cnd_t* __restrict cond, mtx_t* __restrict mtx,
                  const struct timespec* __restrict time_point) {
  return FromErrno(pthread_cond_timedwait(
      reinterpret_cast<pthread_cond_t*>(cond),
      reinterpret_cast<pthread_mutex_t*>(mtx), time_point));
}

void cnd_destroy(cnd_t* cond) {
  pthread_cond_destroy(reinterpret_cast<pthread_cond_t*>(cond));
}

void call_once(once_flag* flag, void (*func)(void)) {
  pthread_once(reinterpret_cast<pthread_once_t*>(flag), func);
}

}  // extern "C"
