"""Persists streamed asset tables as Parquet and hands downstream assets a lazy reader."""

import dagster as dg

from rag_assets.metadata import to_metadata
from rag_assets.resources import AssetStorage
from rag_core.ingest.parquet_store import BatchStream, ParquetTable
from rag_core.ingest.partitioning import Partition


class ParquetIOManager(dg.ConfigurableIOManager):
    storage: dg.ResourceDependency[AssetStorage]

    def handle_output(self, context: dg.OutputContext, obj: BatchStream) -> None:
        name = context.asset_key.to_python_identifier()
        if context.has_asset_partitions:  # each bucket of a partitioned corpus has tables of its own
            name = Partition.from_key(context.asset_partition_key).table(name)
        table = self.storage.store().write(name, obj)
        context.add_output_metadata(
            {
                **to_metadata(obj.summary),
                "rows": table.num_rows,
                "path": dg.MetadataValue.path(str(table.path)),
                "bytes": table.path.stat().st_size,
            }
        )

    def load_input(self, context: dg.InputContext) -> ParquetTable:
        name = context.upstream_output.asset_key.to_python_identifier()
        if context.has_asset_partitions:
            name = Partition.from_key(context.asset_partition_key).table(name)
        table = self.storage.store().get(name)
        if table is None:
            raise FileNotFoundError(
                f"No Parquet table for asset {name!r} under {self.storage.base_dir}; materialize it first."
            )
        return table
