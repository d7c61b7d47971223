"""nbconvert's execute preprocessor, made to keep every output of Deno's Jupyter kernel.

Deno's kernel forwards what a cell writes to stdout and stderr (console.log) from a pipe, in a
task of its own, while it reports the cell done ('idle' status) from another: on a busy machine
the last lines of a cell can reach the client after 'idle', and nbclient, which stops reading a
cell's messages at 'idle', would drop them. This preprocessor keeps reading the cell's messages
after 'idle' until the kernel has sent nothing for `late_output_grace` seconds, before the next
cell starts.

Used by scripts/notebooks.ts as
    jupyter nbconvert --to notebook \
        --NotebookExporter.preprocessors=nbconvert_deno.DenoExecutePreprocessor \
        --DenoExecutePreprocessor.enabled=True ...
with this folder on PYTHONPATH.
"""
from queue import Empty

from jupyter_core.utils import ensure_async
from nbclient.exceptions import CellExecutionComplete
from nbconvert.preprocessors import ExecutePreprocessor
from traitlets import Float


class DenoExecutePreprocessor(ExecutePreprocessor):
    """Executes every cell, collecting the output that arrives after the cell's 'idle' status."""

    late_output_grace = Float(
        0.5,
        help="Seconds without a message from the kernel after which a finished cell's output is complete.",
    ).tag(config=True)

    async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
        await super()._async_poll_output_msg(parent_msg_id, cell, cell_index)
        while True:
            try:
                msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=self.late_output_grace))
            except Empty:
                return
            if msg["parent_header"].get("msg_id") == parent_msg_id:
                try:
                    self.process_message(msg, cell, cell_index)
                except CellExecutionComplete:
                    pass
