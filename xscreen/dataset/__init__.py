"""Training data (DESIGN.md 'dataset'): the HDF5 patch store built from benign scans, a lazy torch
Dataset over it, and the reference repo's image-folder layout for the paper's benchmarks."""
from xscreen.dataset.folder import ImageFolderPatches
from xscreen.dataset.patchset import BlockBatchSampler, PatchStoreDataset, augment_patch
from xscreen.dataset.store import (StoreInfo, StoreProgress, StoreScan, build_patch_store,
                                   extract_patches, split_scans, store_grid, store_info,
                                   tile_origins)

__all__ = ["BlockBatchSampler", "ImageFolderPatches", "PatchStoreDataset", "StoreInfo", "StoreProgress",
           "StoreScan", "augment_patch", "build_patch_store", "extract_patches", "split_scans",
           "store_grid", "store_info", "tile_origins"]
