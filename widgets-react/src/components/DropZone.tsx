import type * as React from "react";

/** The widget's root: an image file dropped anywhere on it becomes a query. */
export function DropZone(props: { onFile: (file: File) => void; children: React.ReactNode }) {
  return (
    <div
      className="rnb-root"
      onDragOver={(e) => {
        if (e.dataTransfer?.types?.includes("Files")) e.preventDefault();
      }}
      onDrop={(e) => {
        const file = e.dataTransfer?.files?.[0];
        if (file) {
          e.preventDefault();
          props.onFile(file);
        }
      }}
    >
      {props.children}
    </div>
  );
}
