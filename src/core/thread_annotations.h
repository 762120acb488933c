#pragma once
// Clang's thread-safety annotations (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html).
// Under Clang with -Wthread-safety the compiler checks them: a field marked GUARDED_BY(mu_) may
// only be touched with mu_ held, a function marked REQUIRES(mu_) only called with it held, one
// marked EXCLUDES(mu_) only without. Other compilers see nothing. The annotations only check
// locks taken through core::Mutex and core::MutexLock (core/mutex.h); std::mutex carries none.
//
// The convention (docs/architecture.md, "Threads and locks"): every field a mutex guards says
// GUARDED_BY in its class's header; a private helper that expects the lock held says REQUIRES
// (and, by habit, ends in _locked); a public method that takes the lock may say EXCLUDES.

#if defined(__clang__)
#define ZS_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define ZS_THREAD_ANNOTATION(x)
#endif

// A type that is a lock (core::Mutex).
#define CAPABILITY(x) ZS_THREAD_ANNOTATION(capability(x))
// An RAII type that holds a lock for its lifetime (core::MutexLock).
#define SCOPED_CAPABILITY ZS_THREAD_ANNOTATION(scoped_lockable)
// A field read or written only with the lock held.
#define GUARDED_BY(x) ZS_THREAD_ANNOTATION(guarded_by(x))
// A pointer field whose pointee is accessed only with the lock held.
#define PT_GUARDED_BY(x) ZS_THREAD_ANNOTATION(pt_guarded_by(x))
// Locks that must be taken before (after) this one.
#define ACQUIRED_BEFORE(...) ZS_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) ZS_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
// A function callable only with the lock held (and which leaves it held).
#define REQUIRES(...) ZS_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
// A function that takes (releases) the lock.
#define ACQUIRE(...) ZS_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) ZS_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) ZS_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
// A function that must be called without the lock (it takes it itself).
#define EXCLUDES(...) ZS_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
// A function that checks at run time that the lock is held; the analysis then assumes it.
#define ASSERT_CAPABILITY(x) ZS_THREAD_ANNOTATION(assert_capability(x))
// A function returning a reference to the lock.
#define RETURN_CAPABILITY(x) ZS_THREAD_ANNOTATION(lock_returned(x))
// Turns the analysis off for one function (say why where it is used).
#define NO_THREAD_SAFETY_ANALYSIS ZS_THREAD_ANNOTATION(no_thread_safety_analysis)
