/* The map: devices coloured by state, clustered; communes as rings sized by their devices, red where some are down.
   With no tile server set (MONITOR_MAP_TILE_URL), the points and communes still show on a plain background. */
(function () {
  "use strict";
  var COLOURS = { up: "#177245", degraded: "#8a5a00", down: "#b3261e", unknown: "#5b6875", maintenance: "#5b6875" };
  document.addEventListener("DOMContentLoaded", function () {
    var element = document.getElementById("map");
    if (!element || !window.L) return;
    var map = L.map(element, { preferCanvas: true, maxZoom: 18, attributionControl: !!element.dataset.tiles });
    map.setView([21.85, 106.75], 9); // Lạng Sơn, until the fleet's own bounds are known (layers need a view first)
    if (element.dataset.tiles) L.tileLayer(element.dataset.tiles, { maxZoom: 18 }).addTo(map);
    fetch(element.dataset.source, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { if (!response.ok) throw new Error(response.status); return response.json(); })
      .then(function (data) {
        var bounds = [];
        data.communes.forEach(function (c) {
          if (c[2] == null || c[3] == null || !c[4]) return;
          bounds.push([c[2], c[3]]);
          L.circle([c[2], c[3]], { radius: 800 + 150 * c[4], color: c[5] ? COLOURS.down : "#0b5cad", weight: 1, fillOpacity: 0.05 })
            .bindTooltip(c[1] + ": " + c[4] + " " + element.dataset.labelDevices + (c[5] ? ", " + c[5] + " " + element.dataset.labelDown : ""))
            .addTo(map);
        });
        var cluster = L.markerClusterGroup ? L.markerClusterGroup({ chunkedLoading: true, maxClusterRadius: 40 }) : L.layerGroup();
        data.devices.forEach(function (d) {
          bounds.push([d[4], d[5]]);
          var marker = L.circleMarker([d[4], d[5]], { radius: 6, color: COLOURS[d[3]] || COLOURS.unknown, weight: 2, fillOpacity: 0.8 });
          var link = document.createElement("a");
          link.href = "/devices/" + encodeURIComponent(d[0]);
          link.textContent = d[1] + " (" + d[0] + ")";
          marker.bindPopup(link);
          cluster.addLayer(marker);
        });
        map.addLayer(cluster);
        if (bounds.length) map.fitBounds(bounds, { padding: [20, 20] });
      })
      .catch(function (error) {
        if (window.console) console.error("map:", error);
        element.textContent = document.documentElement.lang === "en" ? "The map could not be loaded." : "Không tải được bản đồ.";
      });
  });
})();
