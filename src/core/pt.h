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
/* Writes tensors as a torch.save archive of an OrderedDict state dict, atomically. */
elm_status elm__pt_write(const char *path, const elm__st_out *t, int n);

#endif
