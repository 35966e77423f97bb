/*
 * lstm.h - a one-layer LSTM with a linear readout: the baseline of the ablation studies. Internal:
 * users reach it as an elm_model of model_type ELM_MODEL_LSTM (elm.h); model_lstm.c wraps it.
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
 * All parameters live in one flat block of elm__lstm_dtype() elements, in the order listed above,
 * and the gradients in a second block of the same layout, so an optimiser is one loop over
 * elm__lstm_num_params() elements (elm__lstm_params / elm__lstm_grads).
 *
 * Example: one training step.
 *
 *     elm__lstm *m = NULL;
 *     elm__lstm_create(&m, I, 64, O, ELM_F32, seed);
 *     elm__lstm_zero_grad(m);
 *     elm__lstm_forward_train(m, x, y, B, T);   // x (B, T, I), y (B, T, O)
 *     // ... loss and dy = dL/dy (B, T, O) ...
 *     elm__lstm_backward(m, dy);                // adds dL/dparam into elm__lstm_grads(m)
 *     elm__lstm_free(m);
 *
 * Ownership and threads as for elm_model (elm.h): the caller owns its arrays, the library keeps
 * no caller pointer past a call, a model is used from one thread at a time and parallelises over
 * the batch itself with OpenMP. Results do not depend on the thread count: per-sample gradients
 * are summed in sample order.
 */
#ifndef ELM_LSTM_H
#define ELM_LSTM_H

#include "st.h"

typedef struct elm__lstm elm__lstm;

/* A fresh model with PyTorch's initialisation drawn from `seed`. Sizes must be >= 1. */
elm_status elm__lstm_create(elm__lstm **out, int num_input, int hidden, int num_output,
                           elm_dtype dtype, uint64_t seed);
void elm__lstm_free(elm__lstm *m);

int elm__lstm_num_input(const elm__lstm *m);
int elm__lstm_hidden(const elm__lstm *m);
int elm__lstm_num_output(const elm__lstm *m);
elm_dtype elm__lstm_dtype(const elm__lstm *m);
/* Trainable scalars: 4H(I + H) + 8H + O(H + 1). Every parameter is trainable. */
size_t elm__lstm_num_params(const elm__lstm *m);

/*
 * The flat parameter block and the gradient block (elm__lstm_num_params() elements of
 * elm__lstm_dtype() each, same layout). Borrowed: valid until elm__lstm_free. Writing parameters
 * directly is allowed; the model derives nothing from them.
 */
void *elm__lstm_params(elm__lstm *m);
void *elm__lstm_grads(elm__lstm *m);

/* The six named tensors (views into the blocks), in the layout order; trainable is always 1. */
int elm__lstm_num_tensors(const elm__lstm *m);
elm_status elm__lstm_tensor(const elm__lstm *m, int i, elm_tensor *out);

/* Inference: x (B, T, I) -> y (B, T, O). The _f64 call needs an ELM_F64 model, the other F32. */
elm_status elm__lstm_forward(elm__lstm *m, const float *x, float *y, int B, int T);
elm_status elm__lstm_forward_f64(elm__lstm *m, const double *x, double *y, int B, int T);

/*
 * Training: forward_train keeps what backpropagation through time needs (x's nonzeros and the
 * gates, cells and hidden states: B * T * 6H reals); backward then takes dL/dy (B, T, O)
 * and *adds* dL/dparam into the gradient block, which elm__lstm_zero_grad clears. x, y and dy are
 * in the model's dtype. backward without a preceding forward_train is ELM_ERR_ARG.
 */
elm_status elm__lstm_forward_train(elm__lstm *m, const void *x, void *y, int B, int T);
elm_status elm__lstm_backward(elm__lstm *m, const void *dy);
/*
 * Inference (train 0) or forward_train (train 1) from spike lists, rows (b, t) already checked
 * (elm_model_forward_sparse): values in the model's dtype, NULL for ones. The input projection
 * reads only the listed inputs; the results are bitwise those of the dense calls on the rows the
 * lists describe.
 */
elm_status elm__lstm_forward_sparse(elm__lstm *m, const elm_sparse_input *x, void *y, int B,
                                    int T, int train);
void elm__lstm_zero_grad(elm__lstm *m);
/* Euclidean norm of the gradients; if max_norm > 0, scales them down to it (torch semantics). */
double elm__lstm_clip_grad_norm(elm__lstm *m, double max_norm);

/* Threads used by forward and backward (OpenMP over samples); 0 = OpenMP's default. */
void elm__lstm_set_threads(elm__lstm *m, int threads);

/*
 * The model's tensors from a parsed safetensors file written by elm or by PyTorch (sizes come
 * from the tensor shapes, which must agree with one another); any float dtype is converted to
 * `dtype`. A missing tensor is ELM_ERR_FORMAT naming it, a NaN or infinite value ELM_ERR_NUMERIC.
 */
elm_status elm__lstm_from_st(elm__lstm **out, const elm__st_file *f, elm_dtype dtype);
/* Saves the six tensors (F32 or F64 by the model's dtype) with __metadata__ model_type "lstm",
 * num_input, hidden_size, num_output to the file `path`, atomically. */
elm_status elm__lstm_to_st(const elm__lstm *m, const char *path);
/* 1 when the parsed file holds an LSTM (it has lstm.weight_ih_l0). */
int elm__lstm_st_is_lstm(const elm__st_file *f);

#endif /* ELM_LSTM_H */
