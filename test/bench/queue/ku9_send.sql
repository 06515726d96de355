SELECT ku9.send('@Q@', :payload);
