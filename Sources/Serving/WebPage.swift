/// The page at `/`: drop an image, see the class probabilities as bars and the model version.
/// Self-contained (no CDN): it posts the file to `/v1/models/{name}/predict`.
func webPage(modelName: String) -> String {
    let name =
        modelName.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || "0123456789-_.".unicodeScalars.contains($0) }
        ? modelName : "model"
    return #"""
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>MedSynth: \#(name)</title>
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <style>
        body { font: 15px system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; color: #222; }
        #drop { border: 2px dashed #888; border-radius: 8px; padding: 2.5rem; text-align: center; cursor: pointer; }
        #drop.over { background: #eef5ff; border-color: #36c; }
        #preview { image-rendering: pixelated; width: 112px; height: 112px; margin: 1rem 0; display: none; }
        .row { display: flex; align-items: center; margin: .3rem 0; }
        .label { width: 9rem; } .bar { height: 1.1rem; background: #36c; border-radius: 3px; }
        .value { margin-left: .5rem; font-variant-numeric: tabular-nums; } .best .bar { background: #c33; }
        #error { color: #b00; } #meta { color: #666; margin-top: 1rem; }
        </style></head><body>
        <h1>MedSynth classifier</h1>
        <div id="drop">Drop a PNG, JPEG or DICOM image here, or click to choose one.<input id="file" type="file" accept="image/png,image/jpeg,application/dicom,.dcm" hidden></div>
        <img id="preview" alt="">
        <div id="bars"></div><p id="error"></p><p id="meta"></p>
        <p><small>Research tool, not for diagnosis. <a href="/v1/monitor">monitor</a> · <a href="/metrics">metrics</a></small></p>
        <script>
        const model = "\#(name)";
        const drop = document.getElementById("drop"), file = document.getElementById("file");
        drop.onclick = () => file.click();
        file.onchange = () => file.files[0] && send(file.files[0]);
        drop.ondragover = e => { e.preventDefault(); drop.classList.add("over"); };
        drop.ondragleave = () => drop.classList.remove("over");
        drop.ondrop = e => { e.preventDefault(); drop.classList.remove("over"); e.dataTransfer.files[0] && send(e.dataTransfer.files[0]); };
        async function send(f) {
          const preview = document.getElementById("preview");
          preview.src = URL.createObjectURL(f); preview.style.display = "block";
          document.getElementById("error").textContent = "";
          const bars = document.getElementById("bars"); bars.textContent = "";
          try {
            const r = await fetch("/v1/models/" + model + "/predict", { method: "POST", body: f });
            const j = await r.json();
            if (!r.ok) throw new Error(j.error || r.statusText);
            for (const [name, p] of Object.entries(j.probabilities).sort((a, b) => b[1] - a[1])) {
              const row = document.createElement("div"); row.className = "row" + (name === j.predicted ? " best" : "");
              const label = document.createElement("span"); label.className = "label"; label.textContent = name;
              const bar = document.createElement("div"); bar.className = "bar"; bar.style.width = (p * 20) + "rem";
              const value = document.createElement("span"); value.className = "value"; value.textContent = (p * 100).toFixed(1) + "%";
              row.append(label, bar, value); bars.append(row);
            }
            document.getElementById("meta").textContent = "model " + j.model + " version " + j.version;
          } catch (e) { document.getElementById("error").textContent = e.message; }
        }
        </script></body></html>
        """#
}
