"""Run an IREE ``.vmfb``: values stay device-resident between calls."""

from __future__ import annotations

import numpy as np

from tracec.runtime.artifact import ArtifactError, parse_manifest


#: the IREE driver that runs each target's artifacts (CPU targets: local-sync, the
#: lowest-latency driver for the small dispatches of one time step)
DRIVERS = {"llvm-cpu": "local-sync", "vmvx": "local-sync", "vulkan": "vulkan",
           "cuda": "cuda", "rocm": "hip"}


def _manifest_target(path: str, data: bytes, rt) -> str | None:
    """The target recorded in the artifact's manifest, read without a device."""
    try:
        module = rt.VmModule.copy_buffer(rt.VmInstance(), data)
        fn = module.lookup_function("forward")
        text = fn.reflection.get("tracec.manifest") if fn is not None else None
        return parse_manifest(path, text).get("target")
    except (ValueError, RuntimeError):
        return None  # the load below says what is wrong with the file


class IreeExecutor:
    def __init__(self, path: str, data: bytes, driver: str | None = None,
                 allocator: str | None = "caching"):
        import iree.runtime as rt

        self._rt = rt
        if driver is None:
            driver = DRIVERS.get(_manifest_target(path, data, rt), "local-sync")
        self.driver = driver
        try:
            hal_driver = rt.get_driver(driver)
        except (ValueError, RuntimeError) as e:
            raise ArtifactError(f"IREE driver '{driver}' is not available here: {e}") from e
        try:
            # On the CPU drivers the caching allocator keeps the buffers a call frees for
            # the next one: a time step's transients are not allocated and zeroed again
            # every step (benchmarks/results/fusion_barrier_ab.md). Other drivers keep
            # their own allocator (IREE 3.13's Vulkan one refuses some of the caching
            # allocator's requests).
            if not driver.startswith("local-"):
                allocator = None
            device = hal_driver.create_default_device(allocators=[allocator] if allocator else None)
        except (ValueError, RuntimeError) as e:
            msg = str(e).strip().splitlines()[-1].split("; ")[-1] if str(e).strip() else type(e).__name__
            raise ArtifactError(f"IREE cannot make a '{driver}' device with the allocator "
                                f"{allocator!r}: {msg}",
                                hint="use allocator='caching' (the default) or None") from e
        self.config = rt.Config(device=device)
        try:
            self.vm_module = rt.VmModule.copy_buffer(self.config.vm_instance, data)
        except (ValueError, RuntimeError) as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ArtifactError(f"{path} is truncated or corrupted: IREE cannot load it ({msg})",
                                hint="recompile the model") from e
        fn = self.vm_module.lookup_function("forward")
        text = fn.reflection.get("tracec.manifest") if fn is not None else None
        self.manifest = parse_manifest(path, text)
        try:
            self.context = rt.SystemContext(vm_modules=[self.vm_module], config=self.config)
        except (ValueError, RuntimeError) as e:
            raise ArtifactError(f"{path} cannot run on driver '{driver}': "
                                f"{str(e).strip().splitlines()[0]}",
                                hint="was it compiled for another target? see its manifest") from e
        self._module = self.context.modules[self.vm_module.name]
        self._fns = {}

    def call(self, entry: str, args: list) -> list:
        fn = self._fns.get(entry)
        if fn is None:
            fn = self._fns[entry] = self._module[entry]
        res = fn(*args)
        if res is None:
            return []
        return list(res) if isinstance(res, (tuple, list)) else [res]

    def to_numpy(self, value) -> np.ndarray:
        if not hasattr(value, "to_host"):
            return np.asarray(value)
        try:
            return np.asarray(value.to_host())
        except ValueError:
            # iree.runtime imports a numpy array as the copy's target, which Vulkan
            # refuses unless it is page-aligned (lavapipe): copy through a staging buffer
            return self._staged_copy(value)

    def _staged_copy(self, value) -> np.ndarray:
        rt = self._rt
        view = value._buffer_view  # the DeviceArray's buffer (iree.runtime has no accessor)
        source = view.get_buffer()
        device = self.config.device
        host = device.allocator.allocate_buffer(
            memory_type=int(rt.MemoryType.HOST_LOCAL | rt.MemoryType.DEVICE_VISIBLE),
            allowed_usage=int(rt.BufferUsage.TRANSFER_TARGET | rt.BufferUsage.MAPPING_SCOPED),
            allocation_size=source.byte_length())
        sem = device.create_semaphore(0)
        device.queue_copy(source, host, wait_semaphores=rt.HalFence.create_at(sem, 0),
                          signal_semaphores=rt.HalFence.create_at(sem, 1))
        rt.HalFence.create_at(sem, 1).wait()
        mapped = host.map()
        return np.array(mapped.asarray(tuple(view.shape), np.dtype(value.dtype)), copy=True)

    def to_device(self, array: np.ndarray):
        # (np.ascontiguousarray would turn a 0-d array into a 1-d one)
        return self._rt.asdevicearray(self.config.device, np.asarray(array, order="C"))
