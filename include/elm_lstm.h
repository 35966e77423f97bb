/*
 * elm_lstm.h - a one-layer LSTM with a linear readout: the baseline of the ablation studies.
 *
 * The equations are PyTorch's nn.LSTM (gate order i, f, g, o) followed by nn.Linear:
 *
 *     a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh               (4H)
 *     i = sigmoid(a_i)  f = sigmoid(a_f)  g = tanh(a_g)  o = sigmoid(a_o)
 *     c_t = f * c_{t-1} + i * g        h_t = o * tanh(c_t)        c_0 = h_0 = 0
 *     y_t = W_r h_t + b_r                                          (O)
 *
 * Tensors carry PyTorch's state-dict names, so a model saved here loads into
 * `nn.ModuleDict({"lstm": nn.LSTM(I, H, batch_first=True), "readout": nn.Linear(H, O)})`:
 *     lstm.weight_ih_l0 (4H, I)  lstm.weight_hh_l0 (4H, H)  lstm.bias_ih_l0 (4H)
 *     lstm.bias_hh_l0 (4H)       readout.weight (O, H)      readout.bias (O)
 * Initialisation is PyTorch's too: every tensor uniform in [-1/sqrt(H), 1/sqrt(H)].
 *
 * All parameters live in one flat block of elm_lstm_dtype() elements, in the order listed above,
 * and the gradients in a second block of the same layout, so an optimiser is one loop over
 * elm_lstm_num_params() elements (elm_lstm_params / elm_lstm_grads).
 *
 * Example: one training step.
 *
 *     elm_lstm *m = NULL;
 *     elm_lstm_create(&m, I, 64, O, ELM_F32, seed);
 *     elm_lstm_zero_grad(m);
 *     elm_lstm_forward_train(m, x, y, B, T);   // x (B, T, I), y (B, T, O)
 *     // ... loss and dy = dL/dy (B, T, O) ...
 *     elm_lstm_backward(m, dy);                // adds dL/dparam into elm_lstm_grads(m)
 *     elm_lstm_free(m);
 *
 * Ownership and threads as for elm_model (elm.h): the caller owns its arrays, the library keeps
 * no caller pointer past a call, a model is used from one thread at a time and parallelises over
 * the batch itself with OpenMP. Results do not depend on the thread count: per-sample gradients
 * are summed in sample order.
 */
#ifndef ELM_LSTM_H
#define ELM_LSTM_H

#include "elm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct elm_lstm elm_lstm;

/* A fresh model with PyTorch's initialisation drawn from `seed`. Sizes must be >= 1. */
elm_status elm_lstm_create(elm_lstm **out, int num_input, int hidden, int num_output,
                           elm_dtype dtype, uint64_t seed);
void elm_lstm_free(elm_lstm *m);

int elm_lstm_num_input(const elm_lstm *m);
int elm_lstm_hidden(const elm_lstm *m);
int elm_lstm_num_output(const elm_lstm *m);
elm_dtype elm_lstm_dtype(const elm_lstm *m);
/* Trainable scalars: 4H(I + H) + 8H + O(H + 1). Every parameter is trainable. */
size_t elm_lstm_num_params(const elm_lstm *m);

/*
 * The flat parameter block and the gradient block (elm_lstm_num_params() elements of
 * elm_lstm_dtype() each, same layout). Borrowed: valid until elm_lstm_free. Writing parameters
 * directly is allowed; the model derives nothing from them.
 */
void *elm_lstm_params(elm_lstm *m);
void *elm_lstm_grads(elm_lstm *m);

/* The six named tensors (views into the blocks), in the layout order; trainable is always 1. */
int elm_lstm_num_tensors(const elm_lstm *m);
elm_status elm_lstm_tensor(const elm_lstm *m, int i, elm_tensor *out);

/* Inference: x (B, T, I) -> y (B, T, O). The _f64 call needs an ELM_F64 model, the other F32. */
elm_status elm_lstm_forward(elm_lstm *m, const float *x, float *y, int B, int T);
elm_status elm_lstm_forward_f64(elm_lstm *m, const double *x, double *y, int B, int T);

/*
 * Training: forward_train keeps what backpropagation through time needs (a copy of x and the
 * gates, cells and hidden states: B * T * (I + 6H) reals); backward then takes dL/dy (B, T, O)
 * and *adds* dL/dparam into the gradient block, which elm_lstm_zero_grad clears. x, y and dy are
 * in the model's dtype. backward without a preceding forward_train is ELM_ERR_ARG.
 */
elm_status elm_lstm_forward_train(elm_lstm *m, const void *x, void *y, int B, int T);
elm_status elm_lstm_backward(elm_lstm *m, const void *dy);
void elm_lstm_zero_grad(elm_lstm *m);
/* Euclidean norm of the gradients; if max_norm > 0, scales them down to it (torch semantics). */
double elm_lstm_clip_grad_norm(elm_lstm *m, double max_norm);

/* Threads used by forward and backward (OpenMP over samples); 0 = OpenMP's default. */
void elm_lstm_set_threads(elm_lstm *m, int threads);

/*
 * Saves the six tensors (F32 or F64 by the model's dtype) with __metadata__ model_type "lstm",
 * num_input, hidden_size, num_output. Written atomically. A path that is a folder or ends in '/'
 * receives model.safetensors.
 */
elm_status elm_lstm_save(const elm_lstm *m, const char *path);
/*
 * Loads a model saved by elm_lstm_save or by PyTorch (sizes come from the tensor shapes, which
 * must agree with one another); any float dtype is converted to `dtype`. A folder means its
 * model.safetensors. A file without the LSTM tensors is ELM_ERR_FORMAT naming the missing one.
 */
elm_status elm_lstm_load(elm_lstm **out, const char *path, elm_dtype dtype);

/* 1 if the safetensors file (or folder/model.safetensors) holds lstm.weight_ih_l0, else 0. */
int elm_lstm_file_is_lstm(const char *path);

#ifdef __cplusplus
}
#endif

#endif /* ELM_LSTM_H */
