// CUDA graphs of a stream's work (the decode step, java/cuda/.../DecodeGraphs) and the pinned
// host memory their plan copies read from: the lathe.h entry points lathe_graph_* and lathe_host_*.
//
// NOTE: capture uses cudaStreamCaptureModeRelaxed: the Java side may still cudaMalloc a fresh
// pool buffer (lathe_buffer_alloc) while the step is being recorded, which the global and
// thread-local modes forbid. Work on other streams is never captured (the backend has one stream).
#include "handles.h"

using lathe::clear_error;
using lathe::fail;

extern "C" {

int32_t lathe_graph_begin_capture(lathe_stream* stream) {
    LATHE_ENTER_STREAM(stream);
    LATHE_REQUIRE(!stream->capturing, "the stream is already capturing a graph");
    LATHE_CUDA(cudaStreamBeginCapture(stream->stream, cudaStreamCaptureModeRelaxed));
    stream->capturing = true;
    stream->captured = true;
    return LATHE_OK;
}

int32_t lathe_graph_end_capture(lathe_stream* stream, lathe_graph** out) {
    LATHE_ENTER_STREAM(stream);
    LATHE_REQUIRE(out != nullptr, "out is NULL");
    *out = nullptr;
    LATHE_REQUIRE(stream->capturing, "the stream is not capturing a graph");
    cudaGraph_t graph = nullptr;
    // NOTE: the capture ends here whatever happens next; a failed op inside it (which
    // invalidates the capture) shows up as this call's error.
    const cudaError_t ended = cudaStreamEndCapture(stream->stream, &graph);
    stream->capturing = false;
    if (ended != cudaSuccess) {
        if (graph != nullptr) cudaGraphDestroy(graph);
        return lathe::cuda_status(ended, "cudaStreamEndCapture");
    }
    if (graph == nullptr) return fail(LATHE_ERR_CUDA, "cudaStreamEndCapture returned no graph");
    size_t nodes = 0;
    cudaError_t err = cudaGraphGetNodes(graph, nullptr, &nodes);
    cudaGraphExec_t exec = nullptr;
    if (err == cudaSuccess) err = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);  // the executable graph keeps what it needs
    if (err != cudaSuccess) return lathe::cuda_status(err, "cudaGraphInstantiate");
    *out = new lathe_graph{stream->device, exec, (int64_t)nodes};
    return LATHE_OK;
}

int32_t lathe_graph_launch(lathe_graph* graph, lathe_stream* stream) {
    LATHE_ENTER_STREAM(stream);
    LATHE_REQUIRE(graph != nullptr, "graph is NULL");
    LATHE_REQUIRE(graph->device == stream->device, "graph (device %d) and stream (device %d) differ", graph->device,
                  stream->device);
    LATHE_REQUIRE(!stream->capturing, "cannot launch a graph on a stream that is capturing");
    LATHE_CUDA(cudaGraphLaunch(graph->exec, stream->stream));
    return LATHE_OK;
}

int32_t lathe_graph_node_count(lathe_graph* graph, int64_t* nodes) {
    clear_error();
    LATHE_REQUIRE(graph != nullptr, "graph is NULL");
    LATHE_REQUIRE(nodes != nullptr, "nodes is NULL");
    *nodes = graph->nodes;
    return LATHE_OK;
}

int32_t lathe_graph_destroy(lathe_graph* graph) {
    clear_error();
    LATHE_REQUIRE(graph != nullptr, "graph is NULL");
    LATHE_CUDA(cudaSetDevice(graph->device));
    const cudaError_t err = cudaGraphExecDestroy(graph->exec);
    delete graph;
    return lathe::cuda_status(err, "cudaGraphExecDestroy");
}

int32_t lathe_host_alloc(lathe_context* ctx, int64_t bytes, void** out) {
    clear_error();
    LATHE_REQUIRE(ctx != nullptr, "context is NULL");
    LATHE_REQUIRE(out != nullptr, "out is NULL");
    LATHE_REQUIRE(bytes > 0, "host allocation size must be positive, got %lld", (long long)bytes);
    *out = nullptr;
    LATHE_CUDA(cudaSetDevice(ctx->device));
    LATHE_CUDA(cudaMallocHost(out, (size_t)bytes));
    return LATHE_OK;
}

int32_t lathe_host_free(lathe_context* ctx, void* host) {
    clear_error();
    LATHE_REQUIRE(ctx != nullptr, "context is NULL");
    LATHE_REQUIRE(host != nullptr, "host is NULL");
    LATHE_CUDA(cudaSetDevice(ctx->device));
    LATHE_CUDA(cudaFreeHost(host));
    return LATHE_OK;
}

}  // extern "C"
