"""Run an IREE ``.vmfb``: values stay device-resident between calls."""

from __future__ import annotations

import numpy as np

from tracec.runtime.artifact import ArtifactError, parse_manifest


class IreeExecutor:
    def __init__(self, path: str, data: bytes, driver: str):
        import iree.runtime as rt

        self._rt = rt
        try:
            self.config = rt.Config(driver)
        except (ValueError, RuntimeError) as e:
            raise ArtifactError(f"IREE driver '{driver}' is not available here: {e}") from e
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
        return np.asarray(value.to_host() if hasattr(value, "to_host") else value)

    def to_device(self, array: np.ndarray):
        # (np.ascontiguousarray would turn a 0-d array into a 1-d one)
        return self._rt.asdevicearray(self.config.device, np.asarray(array, order="C"))
