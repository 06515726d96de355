SELECT ku9.send_batch('@Q@', :batch);
