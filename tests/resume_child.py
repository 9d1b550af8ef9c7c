"""`vidgen` with the resume tests' processors registered: `python resume_child.py run ...` is a run the tests
can kill. With VIDGEN_TEST_KILL_IN_JOIN=N the process kills itself (SIGKILL) at the N-th packet it muxes
while joining segments; with VIDGEN_TEST_KILL_AFTER_JOIN=1 just after the joined file is renamed into place."""

from __future__ import annotations

import os
import signal
from typing import Any, Callable

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `vidgen.cli.main` does, before torch is imported below

from distributed_processors import TrailingMax  # noqa: E402

from vidgen import FrameGroup, Option, Processor, hookimpl  # noqa: E402


class KillAt(Processor):
    """Passes frames through; kills its own process (SIGKILL) on frame `frame` unless file `spared` exists."""

    name = "kill-at"
    options = (Option("frame", int, 0, "frame index to die on"), Option("spared", str, "", "no kill when this exists"))

    def process(self, group: FrameGroup) -> FrameGroup:
        if self.settings.frame in group.core_indices and not os.path.exists(self.settings.spared):
            os.kill(os.getpid(), signal.SIGKILL)
        return group.with_frames(group.core_frames)


class InterruptAt(Processor):
    """Passes frames through; raises KeyboardInterrupt (a Ctrl-C) on frame `frame` unless file `spared` exists."""

    name = "interrupt-at"
    options = (Option("frame", int, 0, "frame index to interrupt on"),
               Option("spared", str, "", "no interruption when this exists"))

    def process(self, group: FrameGroup) -> FrameGroup:
        if self.settings.frame in group.core_indices and not os.path.exists(self.settings.spared):
            raise KeyboardInterrupt
        return group.with_frames(group.core_frames)


class TestProcessors:
    @hookimpl
    def vidgen_register_processors(self, register: Callable[[type[Processor]], None]) -> None:
        for cls in (TrailingMax, KillAt, InterruptAt):
            register(cls)


def _kill_during_join() -> None:
    """Make the join die as the environment asks (see the module's docstring)."""
    import vidgen.resume
    from vidgen.video import VideoWriter

    packets = int(os.environ.get("VIDGEN_TEST_KILL_IN_JOIN", "0"))
    if packets:
        mux_video = VideoWriter.mux_video
        muxed = []

        def dying_mux(self: VideoWriter, packet: Any) -> None:
            muxed.append(packet)
            if len(muxed) == packets:
                os.kill(os.getpid(), signal.SIGKILL)
            mux_video(self, packet)

        VideoWriter.mux_video = dying_mux
    if os.environ.get("VIDGEN_TEST_KILL_AFTER_JOIN"):
        vidgen.resume.WorkFolder.remove = lambda self: os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    from vidgen.cli import main
    from vidgen.plugins import default_plugin_manager

    default_plugin_manager().register(TestProcessors(), name="resume-test-processors")
    _kill_during_join()
    main()
