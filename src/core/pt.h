/*
 * pt.h - PyTorch's torch.save format for state dicts (pt.c): reading a .pt archive into the same
 * tensor table that safetensors files give (elm__st_file), and writing tensors in the layout
 * torch.load reads. Never installed.
 */
#ifndef ELM_PT_H
#define ELM_PT_H

#include "model_internal.h"

/* 1 when the bytes start like a zip archive (what torch.save writes since torch 1.6). */
int elm__pt_is_zip(const char *buf, size_t len);
/*
 * Reads a torch.save archive of `len` bytes into f: one tensor per state-dict entry, in the
 * dict's order, each copied into a contiguous little-endian block (f->meta stays NULL: the
 * configuration travels in model_config.json). `buf` must come from malloc and is owned by the
 * call (freed here); `path` names the source in messages and must outlive f.
 */
elm_status elm__pt_parse(elm__st_file *f, char *buf, size_t len, const char *path);
/* A tensor file by content: a torch.save archive or a safetensors file. */
elm_status elm__tensors_read(elm__st_file *f, const char *path);
/* The model file of a folder (malloc'd): model.safetensors, else neuronio_best_model_state.pt
 * (the authors' released models), else the folder's only .pt file; model.safetensors's path when
 * there is none of these, so that loading's message names what was looked for. */
char *elm__model_file_in_dir(const char *dir);
/* Writes tensors as a torch.save archive of an OrderedDict state dict, atomically. */
elm_status elm__pt_write(const char *path, const elm__st_out *t, int n);
/* A tensor file by name: a torch.save archive when `path` ends in ".pt" (the metadata then go
 * nowhere: the configuration belongs in model_config.json), safetensors otherwise. */
elm_status elm__tensors_write(const char *path, const elm__st_out *t, int n,
                              const char *const *meta_kv, int n_meta);
/* model_config.json beside the .pt file `pt_path` (its folder), as the reference keeps them. */
elm_status elm__pt_write_config(const elm_model *m, const char *pt_path);

#endif
