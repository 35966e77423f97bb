/*
 * nio_data.h - NeuronIO data sets: reading the simulation pickles, opening a folder (caches or
 * pickles) as one list of simulations with random access, and cutting model-ready windows.
 *
 * Where the synapse sign goes: the data (pickle, cache, view) always holds unsigned spikes (0/1).
 * The model input is spikes * sign, sign = +1 for the first n_in/2 inputs (excitatory) and -1 for
 * the rest (inhibitory), exactly as the reference multiplies by create_neuronio_input_type(). It
 * is applied in one place: elm_nio_fill_window(..., apply_sign = 1), which the NeuronIO task and
 * the evaluation use.
 */
#ifndef ELM_NEURONIO_NIO_DATA_H
#define ELM_NEURONIO_NIO_DATA_H

#include "neuronio.h"

/* Reference constants (neuronio_data_utils.py). */
#define ELM_NIO_SOMA_THRESHOLD (-55.0) /* mV: the soma target is clipped here */
#define ELM_NIO_SOMA_BIAS (-67.7)      /* mV: scaled soma = (v - bias) * scale */
#define ELM_NIO_SOMA_SCALE 0.1

/*
 * Reads every simulation of a NeuronIO pickle (Python 3 or Python 2 style, protocol 0 or 2):
 * *sims is a malloc'd array of *n_sims simulations (free with elm_nio_sims_free). Missing keys,
 * wrong types, NaN voltages and out-of-range spike times are errors naming the file and the
 * simulation index.
 */
elm_status elm_nio_pickle_read(const char *path, elm_nio_sim **sims, int *n_sims);
void elm_nio_sims_free(elm_nio_sim *sims, int n_sims);

/*
 * Finds the NeuronIO pickles under `path`: the file itself, or the files of a folder matching
 * the reference's glob "*sim__*" (caches and index.json excluded), sorted by name. *files is a
 * malloc'd array of malloc'd paths (free with elm_nio_free_paths).
 */
elm_status elm_nio_find_pickles(const char *path, char ***files, int *n_files);
void elm_nio_free_paths(char **paths, int n);

/* A data set: simulations from any number of cache files and/or pickles. */
typedef struct elm_nio_data elm_nio_data;

/*
 * Opens each path: a .nioc file, a folder holding .nioc files (a cache made by `elm data convert
 * neuronio`), a pickle file, or a folder of pickles (glob "*sim__*"; read into memory, so convert
 * large sets first). Simulations are numbered file by file in sorted name order.
 */
elm_status elm_nio_data_open(elm_nio_data **out, const char *const *paths, int n_paths);
/* The same with one string of paths separated by ':'. */
elm_status elm_nio_data_open_list(elm_nio_data **out, const char *paths);
void elm_nio_data_free(elm_nio_data *d);

int elm_nio_data_num_sims(const elm_nio_data *d);
int elm_nio_data_n_in(const elm_nio_data *d);
int elm_nio_data_num_files(const elm_nio_data *d);
/* Source file f: its path, and its simulations [first, first + count). */
const char *elm_nio_data_file_path(const elm_nio_data *d, int f);
int elm_nio_data_file_first(const elm_nio_data *d, int f);
int elm_nio_data_file_count(const elm_nio_data *d, int f);
/* A view of simulation k (0 <= k < num_sims), valid until elm_nio_data_free. */
elm_status elm_nio_data_sim(const elm_nio_data *d, int k, elm_nio_view *v);

/*
 * Cuts steps [t0, t0 + T_win) of a simulation: x (T_win, n_in) dense inputs, 1 where an input
 * spiked, times the synapse sign when apply_sign (see above); steps past the end are zero, as the
 * reference pads its last window. target (T_win, 2), if not NULL: spike (1 in the bin of each
 * output spike) and scaled soma ((min(v, -55) + 67.7) * 0.1), zero past the end.
 */
elm_status elm_nio_fill_window(const elm_nio_view *v, int t0, int T_win, float *x, float *target,
                               int apply_sign);

/* Spikes in steps [t0, t0 + T_win) of a simulation, or -1 if its row pointers are corrupt. */
int64_t elm_nio_window_nnz(const elm_nio_view *v, int t0, int T_win);

/*
 * The same window with x as spike lists, in the layout of elm_sparse_input: the window's spikes
 * are written to idx/val from index `start` on, step by step, ids ascending, val = 1 or the
 * synapse sign; ends[t] (T_win entries) receives the index one past step t's last spike. With
 * ends = ptr + 1 and start = ptr[0] it fills CSR row pointers. idx and val hold cap entries in
 * all (start + elm_nio_window_nnz() are needed). Bitwise the input of elm_nio_fill_window,
 * without the dense (T_win, n_in) array; the target is as there. Windows written to disjoint
 * parts of the arrays may be filled concurrently.
 */
elm_status elm_nio_fill_window_sparse(const elm_nio_view *v, int t0, int T_win, int64_t start,
                                      int64_t *ends, int32_t *idx, float *val, size_t cap,
                                      float *target, int apply_sign);

#endif
