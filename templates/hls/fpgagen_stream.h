// fpgagen_stream.h - hls::stream for fpgagen's generated HLS C++.
//
// Under Vitis HLS (synthesis, or C simulation with its headers on the include path) this is
// Vitis's own <hls_stream.h>. Under a plain C++ compiler without those headers it defines a
// minimal, API-compatible hls::stream<T> on a std::queue: write/read, << and >>, empty, full,
// size. Reading an empty stream is a testbench bug: it prints the stream's name and aborts
// (a hardware FIFO would block forever).
#ifndef FPGAGEN_STREAM_H
#define FPGAGEN_STREAM_H

#if defined(__SYNTHESIS__)
#define FPGAGEN_HAVE_HLS_STREAM 1
#elif defined(__has_include)
#if __has_include(<hls_stream.h>)
#define FPGAGEN_HAVE_HLS_STREAM 1
#endif
#endif

#ifdef FPGAGEN_HAVE_HLS_STREAM
#include <hls_stream.h>
#else
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <queue>
#include <string>

namespace hls {

template <typename T>
class stream {
  public:
    stream() : name_("stream") {}
    explicit stream(const char* name) : name_(name) {}
    stream(const stream&) = delete;
    stream& operator=(const stream&) = delete;

    void write(const T& value) { fifo_.push(value); }
    T read() {
        if (fifo_.empty()) {
            std::fprintf(stderr, "hls::stream '%s': read from an empty stream\n", name_.c_str());
            std::abort();
        }
        T value = fifo_.front();
        fifo_.pop();
        return value;
    }
    void read(T& value) { value = read(); }
    void operator<<(const T& value) { write(value); }
    void operator>>(T& value) { value = read(); }
    bool empty() const { return fifo_.empty(); }
    bool full() const { return false; }
    std::size_t size() const { return fifo_.size(); }

  private:
    std::string name_;
    std::queue<T> fifo_;
};

}  // namespace hls
#endif  // FPGAGEN_HAVE_HLS_STREAM

#endif  // FPGAGEN_STREAM_H
